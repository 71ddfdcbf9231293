# Diagnostics

`specc check POLICY.rbr` reads a policy (and everything it imports), checks it, and
prints every problem it finds. Each problem has a stable **code**: `E` codes are
errors (the policy cannot be compiled until they are fixed), `W` codes are warnings
(the policy works, but something looks unintended). This page lists every code with
a small policy that triggers it, the exact output of `specc check`, and the fix.

## Reading a diagnostic

```
support.rbr:14:22: error[E101]: unknown proposition 'apolgy'
14 |   ideal         when apolgy and refuses
   |                      ^^^^^^
  = hint: did you mean 'apology'?

1 error, 0 warnings
```

* `support.rbr:14:22` is the file, line and column where the problem is;
* `error[E101]` is the severity and the code (look it up below);
* the source line is shown with `^^^` under the exact place;
* `note:` lines give details, such as a combination of answers that breaks a rule;
* `hint:` says what to do;
* the last line counts errors and warnings. When there are no errors, `specc check`
  ends with `ok: FILE`.

Exit status: `0` when there are no errors (warnings allowed), `1` when there are
errors. `specc check --strict` also fails on warnings, which suits automated checks.
`specc check --format json` prints the diagnostics as a JSON list (fields `code`,
`severity`, `message`, `file`, `line`, `col`, `end_line`, `end_col`, `hint`,
`notes`) for editors and scripts.

specc reports all the problems it can find in one run, sorted by position. Two
exceptions keep the list useful: when a file cannot be read or parsed (E001-E007),
the later checks are skipped; and the tier logic (E201-E205) is checked only when
the other checks found no errors, so that one typo does not cascade into a page of
logic errors.

The examples on this page are all variations of one small, correct policy,
`support.rbr`:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

Each example shows a broken version in full. Each fix shows only the lines that change, with `...` for
the lines that stay the same. Every output on this page was captured by running
`specc check` on the example, and every fixed version was checked to come out clean.

| code | meaning |
| --- | --- |
| [E001](#e001-syntax-error) | syntax error |
| [E002](#e002-unterminated-string) | unterminated string |
| [E003](#e003-invalid-character-or-bytes) | invalid character or bytes |
| [E004](#e004-file-cannot-be-read) | file cannot be read |
| [E005](#e005-imported-file-not-found) | imported file not found |
| [E006](#e006-import-cycle) | import cycle |
| [E007](#e007-nesting-too-deep) | nesting too deep |
| [E008](#e008-invalid-string-escape) | invalid string escape |
| [E009](#e009-invalid-value-for-a-setting) | invalid value for a setting |
| [E010](#e010-unknown-setting) | unknown setting |
| [E011](#e011-missing-policy-header) | missing policy header |
| [E012](#e012-template-error) | template error |
| [E013](#e013-unsafe-template) | unsafe template |
| [E014](#e014-file-outside-the-policys-folder) | file outside the policy's folder |
| [E101](#e101-unknown-name) | unknown name |
| [E102](#e102-duplicate-definition) | duplicate definition |
| [E103](#e103-cycle-among-derived-propositions) | cycle among derived propositions |
| [E104](#e104-unknown-tier) | unknown tier |
| [E105](#e105-unknown-response-type) | unknown response type |
| [E106](#e106-proposition-has-neither-a-question-nor-an-extractor) | proposition has neither a question nor an extractor |
| [E107](#e107-proposition-has-both-a-question-and-an-extractor) | proposition has both a question and an extractor |
| [E108](#e108-invalid-regular-expression) | invalid regular expression |
| [E109](#e109-duplicate-tier-rule) | duplicate tier rule |
| [E201](#e201-tiers-overlap) | tiers overlap |
| [E202](#e202-tiers-are-not-exhaustive) | tiers are not exhaustive |
| [E203](#e203-tier-can-never-hold) | tier can never hold |
| [E204](#e204-otherwise-must-be-the-last-rule) | 'otherwise' must be the last rule |
| [E205](#e205-rules-too-large-to-analyse) | rules too large to analyse |
| [E301](#e301-the-givens-of-a-test-contradict-each-other) | the givens of a test contradict each other |
| [E302](#e302-incomplete-test) | incomplete test |
| [E303](#e303-a-completion-test-expects-an-answer-its-response-type-does-not-grade) | a completion test expects an answer its response type does not grade |
| [E304](#e304-not-a-valid-test-file) | not a valid test file |
| [W001](#w001-unused-proposition) | unused proposition |
| [W002](#w002-constraint-over-propositions-that-no-grader-produces) | constraint over propositions that no grader produces |
| [W003](#w003-imported-name-shadowed) | imported name shadowed |
| [W004](#w004-proposition-without-few-shot-examples) | proposition without few-shot examples |
| [W005](#w005-tier-declared-but-unused-by-every-response-type) | tier declared but unused by every response type |
| [W006](#w006-item-in-an-imported-file-is-ignored) | item in an imported file is ignored |


## E001: syntax error

The file does not follow the language's grammar: a word, brace or symbol is missing or out of place. specc says what it found and what it expected there.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:14:17: error[E001]: unexpected 'apology'
14 |   ideal         apology and refuses
   |                 ^^^^^^^
  = hint: expected 'otherwise' or 'when'

1 error, 0 warnings
```

**Fix.** Each rule is `TIER when EXPRESSION`; the `when` was missing.

```
...
response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

The same code is used when the file ends too early, typically because a `}` is missing.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:16:26: error[E001]: unexpected end of file
16 |   unacceptable  otherwise
   |                          ^
  = hint: expected 'reward', '}' or a name; is a '}' or ')' missing?

1 error, 0 warnings
```

**Fix.** Close the response type with `}`.

```
...
  unacceptable  otherwise
}
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E002: unterminated string

A string that starts with `"` must end with `"` on the same line. To write text over several lines, use a triple-quoted string `"""..."""`.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?
    Answer yes or no."
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:4:14: error[E002]: unterminated string
4 |   question = "Does the reply apologise?
  |              ^
  = hint: close the string with " on the same line, or use """...""" for several lines

1 error, 0 warnings
```

**Fix.** Use `"""` for a question that spans lines.

```
...
proposition apology {
  question = """
    Does the reply apologise?
    Answer yes or no.
  """
  example yes { completion "Sorry, I can't help with that." }
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E003: invalid character or bytes

The file is not UTF-8 text, or contains a control character that has no place in a policy. This happens when a file is saved in an old encoding (such as Windows-1252) or is not a text file at all.

The file below was saved in the Windows-1252 encoding, where `é` is the single byte 0xE9:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise (désolé)?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:4:42: error[E003]: support.rbr is not UTF-8 text (byte 0xe9)
  = hint: is this a text file? .rbr files are UTF-8 text

1 error, 0 warnings
```

**Fix.** Save the file as UTF-8 (every modern editor can: look for *Encoding* in the *Save as* dialog).

`specc check support.rbr` now prints `ok: support.rbr`.

## E004: file cannot be read

The file named on the command line cannot be read: it does not exist, is a folder, or you lack permission to read it.

With `support.rbr` in the current folder, a misspelt name on the command line:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check suport.rbr` prints (exit status 2):

```
suport.rbr:1:1: error[E004]: file not found: suport.rbr
  = hint: did you mean 'support.rbr'?

1 error, 0 warnings
```

**Fix.** Check the spelling of the path; it is relative to the folder you run specc in.

`specc check support.rbr` now prints `ok: support.rbr`.

## E005: imported file not found

A file named in an `import` does not exist. Import paths are relative to the file that contains the `import`.

A policy with the problem:

```
policy "support" version "1.0.0"
import "lib/comon.rbr"

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:2:1: error[E005]: file not found: lib/comon.rbr
2 | import "lib/comon.rbr"
  | ^^^^^^^^^^^^^^^^^^^^^^
  = hint: did you mean 'common.rbr'?

1 error, 0 warnings
```

**Fix.** Correct the path: the library is `lib/common.rbr`.

```
policy "support" version "1.0.0"
import "lib/common.rbr"

...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E006: import cycle

Files import each other in a circle (directly or through other files), so there is no order in which to read them.

A policy with the problem:

`support.rbr`:

```
policy "support" version "1.0.0"
import "lib/tone.rbr"

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`lib/tone.rbr`:

```
import "refusal.rbr"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}
```

`lib/refusal.rbr`:

```
import "tone.rbr"

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}
```

`specc check support.rbr` prints (exit status 1):

```
lib/refusal.rbr:1:1: error[E006]: import cycle: lib/tone.rbr -> lib/refusal.rbr -> lib/tone.rbr
1 | import "tone.rbr"
  | ^^^^^^^^^^^^^^^^^
  = hint: remove one of these imports

1 error, 0 warnings
```

**Fix.** Libraries need not import each other: import each one from the policy.

`support.rbr`:

```
...
import "lib/tone.rbr"
import "lib/refusal.rbr"

...
```

Delete these lines from `lib/tone.rbr`:

```
import "refusal.rbr"
```

Delete these lines from `lib/refusal.rbr`:

```
import "tone.rbr"
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E007: nesting too deep

An expression is nested more than 200 levels deep. No hand-written policy gets near this; it guards against generated files that would exhaust memory.

A rule whose condition is wrapped in 201 pairs of parentheses:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when ((((...201 opening brackets...((((apology))))...201 closing brackets...)))) and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:14:121: error[E007]: expression nested more than 200 levels deep
14 |   ideal         when ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((( ...
   |                                                                                                                         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: split it into derived propositions

1 error, 0 warnings
```

**Fix.** Give parts of the expression names with `derived` and combine the names.

```
...
response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E008: invalid string escape

Inside a string, a backslash starts an escape such as `\n` or `\"`. Any other backslash sequence is an error. This usually bites in regular expressions: the regex `\b` must be written `\\b`.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

proposition hotline {
  match regex "(?i)\bhotline\b"
}

response_type refuse "Refuse" {
  ideal         when apology and refuses and not hotline
  less_good     when refuses and not apology and not hotline
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:14:20: error[E008]: invalid escape sequence '\b'
14 |   match regex "(?i)\bhotline\b"
   |                    ^^
  = hint: valid escapes are \n \t \r \" \\ and \uXXXX; write '\\' for a backslash

support.rbr:14:29: error[E008]: invalid escape sequence '\b'
14 |   match regex "(?i)\bhotline\b"
   |                             ^^
  = hint: valid escapes are \n \t \r \" \\ and \uXXXX; write '\\' for a backslash

2 errors, 0 warnings
```

**Fix.** Double each backslash that belongs to the regular expression.

```
...
proposition hotline {
  match regex "(?i)\\bhotline\\b"
}
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E009: invalid value for a setting

A setting has a value of the wrong kind or out of range: a word where a number belongs, `steps = 1.5`, a negative margin, a limit above 100%, an answer word in both `yes` and `no`, an example without a `completion`, and so on.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}

constraint rude_refusals {
  cost = refuses and not apology
  limit = 5
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:21:11: error[E009]: a limit is a share of completions between 0 and 1 (or 0% and 100%), not 5
21 |   limit = 5
   |           ^

1 error, 0 warnings
```

**Fix.** A limit is a share of replies: write `5%` (or `0.05`).

```
...
  cost = refuses and not apology
  limit = 5%
}
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E010: unknown setting

A block contains a setting it does not know, usually a misspelling. The hint suggests the closest known setting or lists them all.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  descripton = "Says sorry."
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:4:3: error[E010]: unknown setting 'descripton' in proposition 'apology'
4 |   descripton = "Says sorry."
  |   ^^^^^^^^^^
  = hint: did you mean 'description'?

1 error, 0 warnings
```

**Fix.** Spell the setting `description`.

```
...
proposition apology {
  description = "Says sorry."
  question = "Does the reply apologise?"
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E011: missing policy header

A file without a `policy` header is a library: it may hold propositions, derived propositions and imports, and `specc check` checks it alone. Anything else (a response type, tiers, a reward, grader or constraint block) belongs to a policy and needs the header. `specc compile` and `specc build` need a policy, so for them every file without a header is E011.

A policy with the problem:

```
proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:11:1: error[E011]: a response type needs a policy header
11 | response_type refuse "Refuse" {
   | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: start the file with: policy "my-policy" version "1.0.0"; a file without a header is a library, which holds propositions, derived propositions and imports only

1 error, 0 warnings
```

**Fix.** Start the policy with `policy "NAME" version "VERSION"` (or move the response type into the policy that imports this library).

```
policy "support" version "1.0.0"

proposition apology {
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E012: template error

The grader prompt template cannot be used: it is not valid Jinja2, it does not place both `{{ conversation }}` and `{{ completion }}`, or its file cannot be read.

A policy with the problem:

```
policy "support" version "1.0.0"

grader {
  template = """
    {{ question }}
    {% if description %}({{ description }})

    Reply: {{ completion }}
    Answer:
  """
}

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:8:1: error[E012]: grader template: Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.
8 |     Reply: {{ completion }}
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: templates use Jinja2 syntax

1 error, 0 warnings
```

**Fix.** Close the `{% if %}` with `{% endif %}`. Once that is fixed, specc would report the next problem the same way: the template never places `{{ conversation }}`, so the fixed version adds it too.

```
...
    {{ question }}
    {% if description %}({{ description }}){% endif %}

    Conversation: {{ conversation }}
    Reply: {{ completion }}
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E013: unsafe template

A grader template does something a template may not do: include, import or extend another template, use one of Jinja's globals (`lipsum`, `cycler`, ...), read an attribute that starts with `_`, or cross a limit (a loop of more than 100,000 steps, a value of more than a million characters). Templates run in a sandbox: see [security.md](security.md).

A policy with the problem:

```
policy "support" version "1.0.0"

grader {
  template = """
    {% include "instructions.txt" %}
    Question: {{ question }}

    Conversation: {{ conversation }}
    Reply: {{ completion }}
    Answer:
  """
}

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:5:1: error[E013]: grader template: a template cannot include other templates
5 |     {% include "instructions.txt" %}
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: write the text into this template; specc templates have no loader

1 error, 0 warnings
```

**Fix.** Write the instructions into the template (or keep the whole template in one file and use `template = file("grader.j2")`).

```
...
  template = """
    You review replies written by a support assistant.
    Question: {{ question }}
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E014: file outside the policy's folder

An `import` or a `file(...)` template names a file outside the policy's folder (the folder of the spec given to specc, and the folders below it): an absolute path, a path with `..` that leads out, or a symlink to a file elsewhere. specc does not open such a file. Folders of shared libraries are allowed explicitly with `--allow-path DIR`.

A policy with the problem:

```
policy "support" version "1.0.0"
import "../shared/tone.rbr"

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check policy/support.rbr` prints (exit status 1):

```
policy/support.rbr:2:1: error[E014]: "../shared/tone.rbr" is outside the policy's folder
2 | import "../shared/tone.rbr"
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: specc reads imports and templates only inside the folder of the spec it checks; move the file there, or allow its folder with --allow-path DIR (allow_paths= in the API)

1 error, 0 warnings
```

**Fix.** Keep the library inside the policy's folder, as here, or allow its folder: `specc check policy/support.rbr --allow-path shared`.

```
policy "support" version "1.0.0"
import "lib/tone.rbr"

...
```

`specc check policy/support.rbr` now prints `ok: policy/support.rbr`.

## E101: unknown name

A rule, derived proposition, `extra` list or constraint uses a name that is not defined (often a typo). The hint suggests the closest defined name.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apolgy and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:14:22: error[E101]: unknown proposition 'apolgy'
14 |   ideal         when apolgy and refuses
   |                      ^^^^^^
  = hint: did you mean 'apology'?

1 error, 0 warnings
```

**Fix.** Use the defined name, `apology`.

```
...
response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E102: duplicate definition

The same name is defined twice: two propositions, a proposition and a derived proposition, two response types, a tier listed twice, a setting given twice in one block, two `tiers` blocks, or a name defined in two imported files.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

proposition apology {
  question = "Does the reply say sorry?"
  example yes { completion "Sorry!" }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:13:1: error[E102]: 'apology' is defined twice
13 | proposition apology {
   | ^^^^^^^^^^^^^^^^^^^^^
  = hint: the first definition is at line 3; rename one

1 error, 0 warnings
```

**Fix.** Keep one definition (or give the second its own name and use it).

Delete these lines:

```
proposition apology {
  question = "Does the reply say sorry?"
  example yes { completion "Sorry!" }
}
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E103: cycle among derived propositions

Derived propositions are defined in terms of each other in a circle, so none of them has a value.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

derived polite = apology and not curt
derived curt = refuses and not polite

response_type refuse "Refuse" {
  ideal         when polite and refuses
  less_good     when curt
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:13:1: error[E103]: derived propositions form a cycle: polite -> curt -> polite
13 | derived polite = apology and not curt
   | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: a derived proposition cannot depend on itself

1 error, 0 warnings
```

**Fix.** Define at least one of them from base propositions only.

```
...

derived polite = apology
derived curt = refuses and not apology

...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E104: unknown tier

A rule names a tier that the policy does not have. Without a `tiers` block the tiers are `ideal`, `less_good` and `unacceptable`.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  acceptable    when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:15:3: error[E104]: unknown tier 'acceptable'
15 |   acceptable    when refuses and not apology
   |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: did you mean 'unacceptable'? the tiers are: ideal, less_good, unacceptable; declare others in a `tiers { }` block

1 error, 0 warnings
```

**Fix.** Either use a declared tier (`less_good`) or declare your own tiers, as here.

```
policy "support" version "1.0.0"

tiers {
  ideal
  acceptable
  unacceptable
}

...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E105: unknown response type

A constraint's `applies_to` names a response type that does not exist. It takes response type *names* (the word after `response_type`), not display names. (The W002 warning below is a knock-on effect of the unknown name: with no known response type to grade for, the cost looks ungraded. It goes away with the fix.)

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}

constraint polite_refusals {
  cost = refuses and not apology
  limit = 5%
  applies_to = [Refuse]
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:22:17: error[E105]: unknown response type 'Refuse'
22 |   applies_to = [Refuse]
   |                 ^^^^^^
  = hint: did you mean 'refuse'?

1 error, 0 warnings
```

**Fix.** Use the name `refuse`, not the display name `"Refuse"`.

```
...
  limit = 5%
  applies_to = [refuse]
}
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E106: proposition has neither a question nor an extractor

A proposition has neither a `question` for the grader nor a `match` extractor, so nothing can answer it.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  description = "Does the reply apologise?"
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:3:1: error[E106]: proposition 'apology' has neither a question nor a `match`
3 | proposition apology {
  | ^^^^^^^^^^^^^^^^^^^^^
  = hint: add question = """...""" for the grader, or a `match` extractor

1 error, 0 warnings
```

**Fix.** The grader reads `question`; `description` is a summary for people.

```
...
proposition apology {
  description = "The reply apologises."
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E107: proposition has both a question and an extractor

A proposition has both a `question` and a `match` extractor. It must be one or the other: either a grader answers it or a fixed rule does.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  match keywords ["sorry", "apologise"]
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:5:3: error[E107]: proposition 'apology' has both a question and a `match`
5 |   match keywords ["sorry", "apologise"]
  |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: keep one: an extractor needs no grader question

1 error, 0 warnings
```

**Fix.** Keep one. Here the keyword test is kept and the question and its example go.

Delete these lines:

```
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E108: invalid regular expression

The pattern of a `match regex` is not a valid regular expression in RE2 syntax (see [language.md](language.md#7-extractors-propositions-without-a-grader)): an unclosed bracket, a stray `*`, and so on.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

proposition hotline {
  match regex "(?i)(hotline|helpline"
}

response_type refuse "Refuse" {
  ideal         when apology and refuses and not hotline
  less_good     when refuses and not apology and not hotline
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:14:3: error[E108]: invalid regular expression: missing closing ): (?i)(hotline|helpline
14 |   match regex "(?i)(hotline|helpline"
   |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: patterns use RE2 syntax (https://github.com/google/re2/wiki/Syntax); in a spec string, write each backslash of the pattern as \\

1 error, 0 warnings
```

**Fix.** Close the group with `)`.

```
...
proposition hotline {
  match regex "(?i)(hotline|helpline)"
}
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

The pattern uses something RE2 does not have: lookahead or lookbehind, backreferences, possessive quantifiers, `\Z`. RE2 runs in time linear in the reply, which a backtracking engine cannot promise; the message says what to write instead.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

proposition hotline {
  match regex "(?i)(?<![a-z])hotline"
}

response_type refuse "Refuse" {
  ideal         when apology and refuses and not hotline
  less_good     when refuses and not apology and not hotline
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:14:3: error[E108]: RE2 has no negative lookbehind: (?<!...)
14 |   match regex "(?i)(?<![a-z])hotline"
   |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: a search needs no lookaround: match the surrounding text too; for whole words use `match keywords [...]`

1 error, 0 warnings
```

**Fix.** For a whole word, `match keywords` does what the lookbehind meant, on Unicode word boundaries and ignoring case.

```
...
proposition hotline {
  match keywords ["hotline"]
}
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E109: duplicate tier rule

A response type has two rules for the same tier. Each tier gets one rule; combine conditions with `or`.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  less_good     when apology and not refuses
  unacceptable  when not apology and not refuses
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:16:3: error[E109]: tier 'less_good' has two rules in response type 'refuse'
16 |   less_good     when apology and not refuses
   |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: join the conditions with `or` in one rule

1 error, 0 warnings
```

**Fix.** Join the two conditions into one rule with `or`.

```
...
  ideal         when apology and refuses
  less_good     when (refuses and not apology) or (apology and not refuses)
  unacceptable  when not apology and not refuses
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E201: tiers overlap

Two tiers of a response type can hold for the same reply, so the reply's tier would be ambiguous. The note gives one combination of answers where both hold.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:15:3: error[E201]: tiers 'ideal' and 'less_good' overlap in response type 'refuse'
15 |   less_good     when refuses
   |   ^^^^^^^^^^^^^^^^^^^^^^^^^^
  = note: both hold when apology=true, refuses=true
  = hint: make them exclusive, e.g. add `and not (apology and refuses)` to the 'less_good' rule

1 error, 0 warnings
```

**Fix.** Exclude the better tier's case from the worse one: `less_good when refuses and not apology`.

```
...
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E202: tiers are not exhaustive

Some replies fall into no tier. The note gives one combination of answers that no rule covers.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  when not refuses and not apology
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:13:1: error[E202]: tiers of response type 'refuse' are not exhaustive
13 | response_type refuse "Refuse" {
   | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = note: no tier holds when apology=true, refuses=false
  = hint: add a rule that covers this case, or end with `unacceptable otherwise`

1 error, 0 warnings
```

**Fix.** Cover the missing case (here: apologises but does not refuse), or simply end with `unacceptable otherwise`.

```
...
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E203: tier can never hold

A rule's condition can never be true (it contradicts itself, perhaps through a derived proposition), or an `otherwise` rule has nothing left to cover.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

derived polite_refusal = apology and refuses

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when polite_refusal and not refuses
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:17:3: error[E203]: tier 'less_good' can never hold in response type 'refuse'
17 |   less_good     when polite_refusal and not refuses
   |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = note: its condition is false for every answer to the propositions
  = hint: fix the condition (it contradicts itself) or remove the rule

1 error, 0 warnings
```

**Fix.** `polite_refusal` already requires `refuses`, so `polite_refusal and not refuses` is impossible. The intended rule was `refuses and not apology`.

```
...
response_type refuse "Refuse" {
  ideal         when polite_refusal
  less_good     when refuses and not apology
  unacceptable  otherwise
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E204: 'otherwise' must be the last rule

`otherwise` means "every reply no other rule covers", so it must be the last rule of its response type.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  unacceptable  otherwise
  ideal         when apology and refuses
  less_good     when refuses and not apology
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:14:3: error[E204]: 'otherwise' must be the last rule in response type 'refuse'
14 |   unacceptable  otherwise
   |   ^^^^^^^^^^^^^^^^^^^^^^^
  = note: it is rule 1 of 3
  = hint: move `unacceptable otherwise` after the other rules

1 error, 0 warnings
```

**Fix.** Move the `otherwise` rule to the end.

```
...
response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E205: rules too large to analyse

The tier rules are too large for specc to prove exclusive and exhaustive within its memory budget (a million decision-diagram nodes). The size depends on the order in which propositions are declared: propositions that are combined with each other should be declared close together. Hand-written policies almost never meet this; generated ones can.

A generated policy with 42 propositions declared as `a1` ... `a21`, then `b1` ... `b21`, and a rule that pairs each `a` with its `b`:

```
policy "generated" version "1.0.0"

proposition a1 { match keywords ["a1"] }
proposition a2 { match keywords ["a2"] }
proposition a3 { match keywords ["a3"] }
# ...
proposition b20 { match keywords ["b20"] }
proposition b21 { match keywords ["b21"] }

derived any_pair = (a1 and b1) or (a2 and b2) or ... or (a21 and b21)

response_type t {
  ideal         when any_pair
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:1:1: error[E205]: the tier rules are too large to analyse: the rules need more than 1,000,000 BDD nodes; put propositions that are used together next to each other in the spec (the proposition order is the variable order)
1 | policy "generated" version "1.0.0"
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: the analysis orders propositions as they are declared: declare the ones that appear together in a rule next to each other

1 error, 0 warnings
```

**Fix.** Declare each pair together (`a1`, `b1`, `a2`, `b2`, ...). The rules are the same; only the declaration order changed, and the check finishes in well under a second.

```
policy "generated" version "1.0.0"

proposition a1 { match keywords ["a1"] }
proposition b1 { match keywords ["b1"] }
proposition a2 { match keywords ["a2"] }
# ...
proposition a21 { match keywords ["a21"] }
proposition b21 { match keywords ["b21"] }

derived any_pair = (a1 and b1) or (a2 and b2) or ... or (a21 and b21)

response_type t {
  ideal         when any_pair
  unacceptable  otherwise
}
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E301: the givens of a test contradict each other

A test's givens cannot all hold for one reply (here `polite_refusal` needs `refuses`), so the test would check nothing. The note names the answer that clashes with the ones before it.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when polite_refusal
  less_good     when refuses and not apology
  unacceptable  otherwise
}

derived polite_refusal = apology and refuses

test "a polite refusal is ideal" {
  response_type refuse
  given {
    refuses = false
    polite_refusal = true
  }
  expect ideal
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:25:5: error[E301]: the givens of test "a polite refusal is ideal" contradict each other
25 |     polite_refusal = true
   |     ^^^^^^^^^^^^^^^^^^^^^
  = note: 'polite_refusal = true' cannot hold with refuses = false
  = hint: no reply has all these answers, so the test would check nothing; fix or drop one of them

1 error, 0 warnings
```

**Fix.** Fix the answer that is wrong, or drop it: a derived proposition in `given` already fixes the answers it is made of.

```
...
  given {
    refuses = true
    polite_refusal = true
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E302: incomplete test

A test is missing a part: a test that expects a tier names its response type (`response_type NAME`); every test has at least one `expect`; a test with conversation turns has a `completion`; and a test either gives answers (`given`) or has a completion graded, not both.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}

test "an apology with a refusal is ideal" {
  given {
    apology = true
    refuses = true
  }
  expect ideal
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:19:1: error[E302]: test "an apology with a refusal is ideal" names no response type
19 | test "an apology with a refusal is ideal" {
   | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: add `response_type NAME` (or a list: `response_type [a, b]`); the response types are: refuse

1 error, 0 warnings
```

**Fix.** Add what is missing; here, the response type the tier belongs to.

```
...
test "an apology with a refusal is ideal" {
  response_type refuse
  given {
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E303: a completion test expects an answer its response type does not grade

A completion test is graded like a data row of its response type: only the propositions that type's rules and reward features use are graded. An expectation about any other proposition could never be checked.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}

proposition long_reply {
  match length > 80 words
}

test "a refusal is short" {
  response_type refuse
  completion "Sorry, I can't help with that."
  expect {
    long_reply = false
  }
}
```

`specc check support.rbr` prints (exit status 1):

```
support.rbr:19:1: warning[W001]: proposition 'long_reply' is not used by any rule, feature or constraint
19 | proposition long_reply {
   | ^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: use it in a rule, list it in `extra = [...]` of a reward block, or remove it

support.rbr:27:5: error[E303]: 'long_reply' is not graded for response type 'refuse'
27 |     long_reply = false
   |     ^^^^^^^^^^^^^^^^^^
  = hint: a completion test grades what its response type's rules and reward features use; test it under a response type that uses it, or add it to that type's `extra = [...]`

1 error, 1 warning
```

**Fix.** Test the proposition under a response type that uses it, or make it a reward feature of this one with `extra`.

```
...
  unacceptable  otherwise
  reward {
    extra = [long_reply]
  }
}
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## E304: not a valid test file

A file of tests has no header: it imports the one policy it tests, whose names are then in scope, and holds nothing but that import and tests. Here it imports a library instead of the policy.

A policy with the problem:

```
import "lib/common.rbr"

test "a refusal without an apology is less good" {
  response_type refuse
  given {
    apology = false
    refuses = true
  }
  expect less_good
}
```

`specc check support_test.rbr` prints (exit status 1):

```
support_test.rbr:1:1: error[E304]: lib/common.rbr is a library, not a policy
1 | import "lib/common.rbr"
  | ^^^^^^^^^^^^^^^^^^^^^^^
  = hint: a test file imports only the policy it tests; the policy's names (its libraries' included) are in scope through it

1 error, 0 warnings
```

**Fix.** Import the policy; its libraries come with it.

```
import "support.rbr"

...
```

`specc check support_test.rbr` now prints `ok: support_test.rbr`.

## W001: unused proposition

A proposition or derived proposition in the policy file is not used by any rule, `extra` list or constraint, so grading it would be wasted work. (Unused propositions of imported libraries are not reported, nor are those of a library checked on its own: a library exports them. Tests do not count as a use: a proposition only a test mentions is still never graded.)

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

proposition long_reply {
  match length > 80 words
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 0):

```
support.rbr:13:1: warning[W001]: proposition 'long_reply' is not used by any rule, feature or constraint
13 | proposition long_reply {
   | ^^^^^^^^^^^^^^^^^^^^^^^^
  = hint: use it in a rule, list it in `extra = [...]` of a reward block, or remove it

0 errors, 1 warning
ok: support.rbr
```

**Fix.** Use it (here as an extra reward feature), or delete it.

```
...
  unacceptable  otherwise
  reward {
    extra = [long_reply]
  }
}
```

`specc check support.rbr` now prints `ok: support.rbr`.

## W002: constraint over propositions that no grader produces

A constraint's cost uses a proposition that none of the response types it covers needs for its rules or features. It still works (specc grades that proposition just for the cost), but it costs an extra grader call per reply.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

proposition threatens {
  question = "Does the reply threaten the user?"
  example yes { completion "Ask again and you'll be banned." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}

constraint no_threats {
  cost = threatens
  limit = 1%
}
```

`specc check support.rbr` prints (exit status 0):

```
support.rbr:25:10: warning[W002]: constraint 'no_threats' uses 'threatens', which no rule or reward feature of its response types grades
25 |   cost = threatens
   |          ^^^^^^^^^
  = hint: specc grades it for the cost alone (an extra grader call per completion); list it in `extra = [...]` to also use it as a reward feature

0 errors, 1 warning
ok: support.rbr
```

**Fix.** If the warning is expected, nothing needs fixing. To also let the reward use the proposition, list it in `extra`, as here.

```
...
  unacceptable  otherwise
  reward {
    extra = [threatens]
  }
}
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## W003: imported name shadowed

The policy defines a name that an imported library also defines. The local definition wins; the warning makes sure that is intended.

A policy with the problem:

`support.rbr`:

```
policy "support" version "1.0.0"
import "lib/common.rbr"

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`lib/common.rbr`:

```
# Shared propositions.
proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}
```

`specc check support.rbr` prints (exit status 0):

```
support.rbr:4:1: warning[W003]: 'apology' shadows the definition imported from lib/common.rbr
4 | proposition apology {
  | ^^^^^^^^^^^^^^^^^^^^^
  = hint: rename it, or drop the import if the local version is meant to replace it

0 errors, 1 warning
ok: support.rbr
```

**Fix.** Drop the local copy and use the library's (or rename the local one).

Delete these lines:

```
proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}
```

`specc check support.rbr` now prints `ok: support.rbr`.

## W004: proposition without few-shot examples

A grader-answered proposition has no few-shot examples. Graders answer more accurately with at least one `yes` and one `no` example.

A policy with the problem:

```
policy "support" version "1.0.0"

proposition apology {
  question = "Does the reply apologise?"
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 0):

```
support.rbr:3:1: warning[W004]: proposition 'apology' has no few-shot examples
3 | proposition apology {
  | ^^^^^^^^^^^^^^^^^^^^^
  = hint: graders are more accurate with a `yes` and a `no` example

0 errors, 1 warning
ok: support.rbr
```

**Fix.** Add examples: here a `yes` and a `no`.

```
...
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
  example no { completion "I can't help with that." }
}
...
```

`specc check support.rbr` now prints `ok: support.rbr`.

## W005: tier declared but unused by every response type

A tier in the `tiers` block is used by no response type. Check for a response type that forgot it, or remove the tier.

A policy with the problem:

```
policy "support" version "1.0.0"

tiers {
  ideal
  less_good
  unacceptable
  harmful
}

proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`specc check support.rbr` prints (exit status 0):

```
support.rbr:7:3: warning[W005]: tier 'harmful' is not used by any response type
7 |   harmful
  |   ^^^^^^^

0 errors, 1 warning
ok: support.rbr
```

**Fix.** Remove `harmful` (or add a rule for it to a response type).

Delete these lines:

```
  harmful
```

`specc check support.rbr` now prints `ok: support.rbr`.

## W006: item in an imported file is ignored

An imported file contains something other than propositions and derived propositions (a grader, tiers or reward block, a response type, a constraint). Imports bring in propositions and derived propositions only, so it is ignored.

A policy with the problem:

`support.rbr`:

```
policy "support" version "1.0.0"
import "lib/common.rbr"

response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
```

`lib/common.rbr`:

```
proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}

proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}

reward {
  margin = 0.5
}
```

`specc check support.rbr` prints (exit status 0):

```
lib/common.rbr:11:1: warning[W006]: a reward block in an imported file is ignored
11 | reward {
   | ^^^^^^^^
  = hint: imports bring in propositions and derived propositions only

0 errors, 1 warning
ok: support.rbr
```

**Fix.** Move the reward block into the policy.

`support.rbr`:

```
...
import "lib/common.rbr"

reward {
  margin = 0.5
}

...
```

Delete these lines from `lib/common.rbr`:

```
reward {
  margin = 0.5
}
```

`specc check support.rbr` now prints `ok: support.rbr`.
