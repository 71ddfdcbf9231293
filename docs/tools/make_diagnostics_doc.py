"""Build docs/diagnostics.md: every code with a bad example, the real `specc check`
output, and a fixed example that checks clean (verified).

    python docs/tools/make_diagnostics_doc.py docs/diagnostics.md          # rewrite
    python docs/tools/make_diagnostics_doc.py --check docs/diagnostics.md  # exit 1 if stale
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from specc.errors import CODES  # noqa: E402

HEADER = 'policy "support" version "1.0.0"\n'


@dataclass
class Case:
    code: str
    about: str  # what it means, in plain words
    bad: dict[str, str | bytes]  # files written before the run
    fixed: dict[str, str | bytes]  # files after the fix (same run target)
    fix: str  # what to do
    target: str = "support.rbr"
    show: tuple[str, ...] = ()  # which files to show (default: target)
    show_fixed: tuple[str, ...] = ()
    bad_note: str = ""  # shown instead of the bad file (binary files, huge ones)
    fixed_note: str = ""
    run_target: str | None = None  # the argument given to specc check (bad run only)
    bad_display: str | None = None  # shown instead of the bad files
    fixed_display: str | None = None


P_APOLOGY = """proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry, I can't help with that." }
}
"""
P_REFUSES = """proposition refuses {
  question = "Does the reply say it will not help?"
  example yes { completion "I won't help with that." }
}
"""
RT_SIMPLE = """response_type refuse "Refuse" {
  ideal         when apology and refuses
  less_good     when refuses and not apology
  unacceptable  otherwise
}
"""
GOOD = HEADER + "\n" + P_APOLOGY + "\n" + P_REFUSES + "\n" + RT_SIMPLE
GOOD_DERIVED = (
    GOOD.replace("when apology and refuses", "when polite_refusal")
    + "\nderived polite_refusal = apology and refuses\n"
)
TEST_CLASH = """
test "a polite refusal is ideal" {
  response_type refuse
  given {
    refuses = false
    polite_refusal = true
  }
  expect ideal
}
"""
TEST_NO_TYPE = """
test "an apology with a refusal is ideal" {
  given {
    apology = true
    refuses = true
  }
  expect ideal
}
"""
P_LONG = """
proposition long_reply {
  match length > 80 words
}
"""
TEST_LONG = """
test "a refusal is short" {
  response_type refuse
  completion "Sorry, I can't help with that."
  expect {
    long_reply = false
  }
}
"""
TEST_FILE = """test "a refusal without an apology is less good" {
  response_type refuse
  given {
    apology = false
    refuses = true
  }
  expect less_good
}
"""


def hotline_policy(match: str) -> str:
    """GOOD with a `hotline` extractor (``match``) that the rules use."""
    return (
        sub(GOOD, P_REFUSES, P_REFUSES + f"\nproposition hotline {{\n  {match}\n}}\n")
        .replace("when apology and refuses", "when apology and refuses and not hotline")
        .replace("when refuses and not apology", "when refuses and not apology and not hotline")
    )


def _big_names(interleaved: bool, n: int = 21) -> list[str]:
    if interleaved:
        return [f"{p}{i}" for i in range(1, n + 1) for p in "ab"]
    return [f"{p}{i}" for p in "ab" for i in range(1, n + 1)]


def big_policy(interleaved: bool, n: int = 21) -> str:
    lines = ['policy "generated" version "1.0.0"', ""]
    lines += [f'proposition {x} {{ match keywords ["{x}"] }}' for x in _big_names(interleaved)]
    pairs = " or ".join(f"(a{i} and b{i})" for i in range(1, n + 1))
    lines += ["", f"derived any_pair = {pairs}", ""]
    lines += ["response_type t {", "  ideal         when any_pair", "  unacceptable  otherwise", "}"]
    return "\n".join(lines) + "\n"


def big_display(interleaved: bool) -> str:
    names = _big_names(interleaved)
    shown = names[:3] + ["..."] + names[-2:]
    lines = ['policy "generated" version "1.0.0"', ""]
    for x in shown:
        lines.append("# ..." if x == "..." else f'proposition {x} {{ match keywords ["{x}"] }}')
    lines += [
        "",
        "derived any_pair = (a1 and b1) or (a2 and b2) or ... or (a21 and b21)",
        "",
        "response_type t {",
        "  ideal         when any_pair",
        "  unacceptable  otherwise",
        "}",
    ]
    return "\n".join(lines)


def sub(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


CASES: list[Case] = [
    Case(
        "E001",
        "The file does not follow the language's grammar: a word, brace or symbol is "
        "missing or out of place. specc says what it found and what it expected there.",
        {"support.rbr": sub(GOOD, "ideal         when apology", "ideal         apology")},
        {"support.rbr": GOOD},
        "Each rule is `TIER when EXPRESSION`; the `when` was missing.",
    ),
    Case(
        "E001",
        "The same code is used when the file ends too early, typically because a `}` "
        "is missing.",
        {"support.rbr": GOOD.rstrip().rstrip("}").rstrip() + "\n"},
        {"support.rbr": GOOD},
        "Close the response type with `}`.",
    ),
    Case(
        "E002",
        'A string that starts with `"` must end with `"` on the same line. To write text '
        'over several lines, use a triple-quoted string `"""..."""`.',
        {
            "support.rbr": sub(
                GOOD,
                'question = "Does the reply apologise?"',
                'question = "Does the reply apologise?\n    Answer yes or no."',
            )
        },
        {
            "support.rbr": sub(
                GOOD,
                'question = "Does the reply apologise?"',
                'question = """\n    Does the reply apologise?\n    Answer yes or no.\n  """',
            )
        },
        'Use `"""` for a question that spans lines.',
    ),
    Case(
        "E003",
        "The file is not UTF-8 text, or contains a control character that has no place "
        "in a policy. This happens when a file is saved in an old encoding (such as "
        "Windows-1252) or is not a text file at all.",
        {
            "support.rbr": sub(
                GOOD, "Does the reply apologise?", "Does the reply apologise (désolé)?"
            ).encode("cp1252")
        },
        {"support.rbr": sub(GOOD, "Does the reply apologise?", "Does the reply apologise (désolé)?")},
        "Save the file as UTF-8 (every modern editor can: look for *Encoding* in the "
        "*Save as* dialog).",
        bad_note="The file below was saved in the Windows-1252 encoding, where `é` is the "
        "single byte 0xE9:",
    ),
    Case(
        "E004",
        "The file named on the command line cannot be read: it does not exist, is a "
        "folder, or you lack permission to read it.",
        {"support.rbr": GOOD},
        {"support.rbr": GOOD},
        "Check the spelling of the path; it is relative to the folder you run specc in.",
        run_target="suport.rbr",
        bad_note="With `support.rbr` in the current folder, a misspelt name on the "
        "command line:",
    ),
    Case(
        "E005",
        "A file named in an `import` does not exist. Import paths are relative to the "
        "file that contains the `import`.",
        {
            "support.rbr": HEADER
            + 'import "lib/comon.rbr"\n\n'
            + P_REFUSES
            + "\n"
            + RT_SIMPLE,
            "lib/common.rbr": "# Shared propositions.\n" + P_APOLOGY,
        },
        {
            "support.rbr": HEADER
            + 'import "lib/common.rbr"\n\n'
            + P_REFUSES
            + "\n"
            + RT_SIMPLE,
            "lib/common.rbr": "# Shared propositions.\n" + P_APOLOGY,
        },
        "Correct the path: the library is `lib/common.rbr`.",
        show=("support.rbr",),
    ),
    Case(
        "E006",
        "Files import each other in a circle (directly or through other files), so "
        "there is no order in which to read them.",
        {
            "support.rbr": HEADER + 'import "lib/tone.rbr"\n\n' + RT_SIMPLE,
            "lib/tone.rbr": 'import "refusal.rbr"\n\n' + P_APOLOGY,
            "lib/refusal.rbr": 'import "tone.rbr"\n\n' + P_REFUSES,
        },
        {
            "support.rbr": HEADER
            + 'import "lib/tone.rbr"\nimport "lib/refusal.rbr"\n\n'
            + RT_SIMPLE,
            "lib/tone.rbr": P_APOLOGY,
            "lib/refusal.rbr": P_REFUSES,
        },
        "Libraries need not import each other: import each one from the policy.",
        show=("support.rbr", "lib/tone.rbr", "lib/refusal.rbr"),
        show_fixed=("support.rbr", "lib/tone.rbr", "lib/refusal.rbr"),
    ),
    Case(
        "E007",
        "An expression is nested more than 200 levels deep. No hand-written policy gets "
        "near this; it guards against generated files that would exhaust memory.",
        {
            "support.rbr": sub(
                GOOD,
                "ideal         when apology and refuses",
                "ideal         when " + "(" * 201 + "apology" + ")" * 201 + " and refuses",
            )
        },
        {"support.rbr": GOOD},
        "Give parts of the expression names with `derived` and combine the names.",
        bad_note="A rule whose condition is wrapped in 201 pairs of parentheses:",
    ),
    Case(
        "E008",
        'Inside a string, a backslash starts an escape such as `\\n` or `\\"`. Any other '
        "backslash sequence is an error. This usually bites in regular expressions: the "
        "regex `\\b` must be written `\\\\b`.",
        {
            "support.rbr": sub(
                GOOD,
                P_REFUSES,
                P_REFUSES + '\nproposition hotline {\n  match regex "(?i)\\bhotline\\b"\n}\n',
            ).replace("ideal         when apology and refuses", "ideal         when apology and refuses and not hotline")
            .replace("less_good     when refuses and not apology", "less_good     when refuses and not apology and not hotline"),
        },
        {
            "support.rbr": sub(
                GOOD,
                P_REFUSES,
                P_REFUSES + '\nproposition hotline {\n  match regex "(?i)\\\\bhotline\\\\b"\n}\n',
            ).replace("ideal         when apology and refuses", "ideal         when apology and refuses and not hotline")
            .replace("less_good     when refuses and not apology", "less_good     when refuses and not apology and not hotline"),
        },
        "Double each backslash that belongs to the regular expression.",
    ),
    Case(
        "E009",
        "A setting has a value of the wrong kind or out of range: a word where a number "
        "belongs, `steps = 1.5`, a negative margin, a limit above 100%, an answer word in "
        "both `yes` and `no`, an example without a `completion`, and so on.",
        {
            "support.rbr": GOOD
            + "\nconstraint rude_refusals {\n  cost = refuses and not apology\n  limit = 5\n}\n"
        },
        {
            "support.rbr": GOOD
            + "\nconstraint rude_refusals {\n  cost = refuses and not apology\n  limit = 5%\n}\n"
        },
        "A limit is a share of replies: write `5%` (or `0.05`).",
    ),
    Case(
        "E010",
        "A block contains a setting it does not know, usually a misspelling. The hint "
        "suggests the closest known setting or lists them all.",
        {
            "support.rbr": sub(
                GOOD,
                'question = "Does the reply apologise?"',
                'descripton = "Says sorry."\n  question = "Does the reply apologise?"',
            )
        },
        {
            "support.rbr": sub(
                GOOD,
                'question = "Does the reply apologise?"',
                'description = "Says sorry."\n  question = "Does the reply apologise?"',
            )
        },
        "Spell the setting `description`.",
    ),
    Case(
        "E011",
        "A file without a `policy` header is a library: it may hold propositions, "
        "derived propositions and imports, and `specc check` checks it alone. Anything "
        "else (a response type, tiers, a reward, grader or constraint block) belongs to "
        "a policy and needs the header. `specc compile` and `specc build` need a policy, "
        "so for them every file without a header is E011.",
        {"support.rbr": GOOD.replace(HEADER + "\n", "")},
        {"support.rbr": GOOD},
        'Start the policy with `policy "NAME" version "VERSION"` (or move the response '
        "type into the policy that imports this library).",
    ),
    Case(
        "E012",
        "The grader prompt template cannot be used: it is not valid Jinja2, it does not "
        "place both `{{ conversation }}` and `{{ completion }}`, or its file cannot be read.",
        {
            "support.rbr": sub(
                GOOD,
                "\n" + P_APOLOGY,
                '\ngrader {\n  template = """\n    {{ question }}\n    {% if description %}'
                "({{ description }})\n\n    Reply: {{ completion }}\n    Answer:\n  \"\"\"\n}\n\n"
                + P_APOLOGY,
            )
        },
        {
            "support.rbr": sub(
                GOOD,
                "\n" + P_APOLOGY,
                '\ngrader {\n  template = """\n    {{ question }}\n    {% if description %}'
                "({{ description }}){% endif %}\n\n    Conversation: {{ conversation }}\n"
                '    Reply: {{ completion }}\n    Answer:\n  """\n}\n\n' + P_APOLOGY,
            )
        },
        "Close the `{% if %}` with `{% endif %}`. Once that is fixed, specc would report "
        "the next problem the same way: the template never places `{{ conversation }}`, "
        "so the fixed version adds it too.",
    ),
    Case(
        "E013",
        "A grader template does something a template may not do: include, import or "
        "extend another template, use one of Jinja's globals (`lipsum`, `cycler`, ...), "
        "read an attribute that starts with `_`, or cross a limit (a loop of more than "
        "100,000 steps, a value of more than a million characters). Templates run in a "
        "sandbox: see [security.md](security.md).",
        {
            "support.rbr": sub(
                GOOD,
                "\n" + P_APOLOGY,
                '\ngrader {\n  template = """\n    {% include "instructions.txt" %}\n'
                "    Question: {{ question }}\n\n    Conversation: {{ conversation }}\n"
                '    Reply: {{ completion }}\n    Answer:\n  """\n}\n\n' + P_APOLOGY,
            ),
            "instructions.txt": "You review replies written by a support assistant.\n",
        },
        {
            "support.rbr": sub(
                GOOD,
                "\n" + P_APOLOGY,
                '\ngrader {\n  template = """\n'
                "    You review replies written by a support assistant.\n"
                "    Question: {{ question }}\n\n    Conversation: {{ conversation }}\n"
                '    Reply: {{ completion }}\n    Answer:\n  """\n}\n\n' + P_APOLOGY,
            ),
            "instructions.txt": "You review replies written by a support assistant.\n",
        },
        "Write the instructions into the template (or keep the whole template in one "
        "file and use `template = file(\"grader.j2\")`).",
    ),
    Case(
        "E014",
        "An `import` or a `file(...)` template names a file outside the policy's folder "
        "(the folder of the spec given to specc, and the folders below it): an absolute "
        "path, a path with `..` that leads out, or a symlink to a file elsewhere. specc "
        "does not open such a file. Folders of shared libraries are allowed explicitly "
        "with `--allow-path DIR`.",
        {
            "policy/support.rbr": HEADER
            + 'import "../shared/tone.rbr"\n\n'
            + P_REFUSES
            + "\n"
            + RT_SIMPLE,
            "shared/tone.rbr": "# Shared propositions.\n" + P_APOLOGY,
        },
        {
            "policy/support.rbr": HEADER
            + 'import "lib/tone.rbr"\n\n'
            + P_REFUSES
            + "\n"
            + RT_SIMPLE,
            "policy/lib/tone.rbr": "# Shared propositions.\n" + P_APOLOGY,
        },
        "Keep the library inside the policy's folder, as here, or allow its folder: "
        "`specc check policy/support.rbr --allow-path shared`.",
        target="policy/support.rbr",
        show=("policy/support.rbr",),
        show_fixed=("policy/support.rbr",),
    ),
    Case(
        "E101",
        "A rule, derived proposition, `extra` list or constraint uses a name that is "
        "not defined (often a typo). The hint suggests the closest defined name.",
        {"support.rbr": sub(GOOD, "when apology and refuses", "when apolgy and refuses")},
        {"support.rbr": GOOD},
        "Use the defined name, `apology`.",
    ),
    Case(
        "E102",
        "The same name is defined twice: two propositions, a proposition and a derived "
        "proposition, two response types, a tier listed twice, a setting given twice in "
        "one block, two `tiers` blocks, or a name defined in two imported files.",
        {
            "support.rbr": sub(
                GOOD,
                P_REFUSES,
                P_REFUSES
                + '\nproposition apology {\n  question = "Does the reply say sorry?"\n'
                '  example yes { completion "Sorry!" }\n}\n',
            )
        },
        {"support.rbr": GOOD},
        "Keep one definition (or give the second its own name and use it).",
    ),
    Case(
        "E103",
        "Derived propositions are defined in terms of each other in a circle, so none of "
        "them has a value.",
        {
            "support.rbr": sub(
                GOOD,
                RT_SIMPLE,
                "derived polite = apology and not curt\n"
                "derived curt = refuses and not polite\n\n" + RT_SIMPLE.replace(
                    "ideal         when apology and refuses", "ideal         when polite and refuses"
                ).replace("less_good     when refuses and not apology", "less_good     when curt"),
            )
        },
        {
            "support.rbr": sub(
                GOOD,
                RT_SIMPLE,
                "derived polite = apology\n"
                "derived curt = refuses and not apology\n\n" + RT_SIMPLE.replace(
                    "ideal         when apology and refuses", "ideal         when polite and refuses"
                ).replace("less_good     when refuses and not apology", "less_good     when curt"),
            )
        },
        "Define at least one of them from base propositions only.",
    ),
    Case(
        "E104",
        "A rule names a tier that the policy does not have. Without a `tiers` block the "
        "tiers are `ideal`, `less_good` and `unacceptable`.",
        {"support.rbr": sub(GOOD, "less_good     when", "acceptable    when")},
        {
            "support.rbr": sub(
                sub(GOOD, "less_good     when", "acceptable    when"),
                "\n" + P_APOLOGY,
                "\ntiers {\n  ideal\n  acceptable\n  unacceptable\n}\n\n" + P_APOLOGY,
            )
        },
        "Either use a declared tier (`less_good`) or declare your own tiers, as here.",
    ),
    Case(
        "E105",
        "A constraint's `applies_to` names a response type that does not exist. It "
        "takes response type *names* (the word after `response_type`), not display names. "
        "(The W002 warning below is a knock-on effect of the unknown name: with no known "
        "response type to grade for, the cost looks ungraded. It goes away with the fix.)",
        {
            "support.rbr": GOOD
            + "\nconstraint polite_refusals {\n  cost = refuses and not apology\n  limit = 5%\n"
            '  applies_to = [Refuse]\n}\n'
        },
        {
            "support.rbr": GOOD
            + "\nconstraint polite_refusals {\n  cost = refuses and not apology\n  limit = 5%\n"
            "  applies_to = [refuse]\n}\n"
        },
        "Use the name `refuse`, not the display name `\"Refuse\"`.",
    ),
    Case(
        "E106",
        "A proposition has neither a `question` for the grader nor a `match` extractor, "
        "so nothing can answer it.",
        {
            "support.rbr": sub(
                GOOD,
                'proposition apology {\n  question = "Does the reply apologise?"\n'
                '  example yes { completion "Sorry, I can\'t help with that." }\n}',
                'proposition apology {\n  description = "Does the reply apologise?"\n}',
            )
        },
        {
            "support.rbr": sub(
                GOOD,
                'proposition apology {\n  question = "Does the reply apologise?"\n'
                '  example yes { completion "Sorry, I can\'t help with that." }\n}',
                'proposition apology {\n  description = "The reply apologises."\n'
                '  question = "Does the reply apologise?"\n'
                '  example yes { completion "Sorry, I can\'t help with that." }\n}',
            )
        },
        "The grader reads `question`; `description` is a summary for people.",
    ),
    Case(
        "E107",
        "A proposition has both a `question` and a `match` extractor. It must be one or "
        "the other: either a grader answers it or a fixed rule does.",
        {
            "support.rbr": sub(
                GOOD,
                'proposition apology {\n  question = "Does the reply apologise?"\n',
                'proposition apology {\n  question = "Does the reply apologise?"\n'
                '  match keywords ["sorry", "apologise"]\n',
            )
        },
        {
            "support.rbr": sub(
                GOOD,
                'proposition apology {\n  question = "Does the reply apologise?"\n'
                '  example yes { completion "Sorry, I can\'t help with that." }\n}',
                'proposition apology {\n  match keywords ["sorry", "apologise"]\n}',
            )
        },
        "Keep one. Here the keyword test is kept and the question and its example go.",
    ),
    Case(
        "E108",
        "The pattern of a `match regex` is not a valid regular expression in RE2 syntax "
        "(see [language.md](language.md#7-extractors-propositions-without-a-grader)): an "
        "unclosed bracket, a stray `*`, and so on.",
        {"support.rbr": hotline_policy('match regex "(?i)(hotline|helpline"')},
        {"support.rbr": hotline_policy('match regex "(?i)(hotline|helpline)"')},
        "Close the group with `)`.",
    ),
    Case(
        "E108",
        "The pattern uses something RE2 does not have: lookahead or lookbehind, "
        "backreferences, possessive quantifiers, `\\Z`. RE2 runs in time linear in the "
        "reply, which a backtracking engine cannot promise; the message says what to "
        "write instead.",
        {"support.rbr": hotline_policy('match regex "(?i)(?<![a-z])hotline"')},
        {"support.rbr": hotline_policy('match keywords ["hotline"]')},
        "For a whole word, `match keywords` does what the lookbehind meant, on Unicode "
        "word boundaries and ignoring case.",
    ),
    Case(
        "E109",
        "A response type has two rules for the same tier. Each tier gets one rule; "
        "combine conditions with `or`.",
        {
            "support.rbr": sub(
                GOOD,
                "  less_good     when refuses and not apology\n",
                "  less_good     when refuses and not apology\n"
                "  less_good     when apology and not refuses\n",
            ).replace("unacceptable  otherwise", "unacceptable  when not apology and not refuses")
        },
        {
            "support.rbr": sub(
                GOOD,
                "  less_good     when refuses and not apology\n",
                "  less_good     when (refuses and not apology) or (apology and not refuses)\n",
            ).replace("unacceptable  otherwise", "unacceptable  when not apology and not refuses")
        },
        "Join the two conditions into one rule with `or`.",
    ),
    Case(
        "E201",
        "Two tiers of a response type can hold for the same reply, so the reply's tier "
        "would be ambiguous. The note gives one combination of answers where both hold.",
        {"support.rbr": sub(GOOD, "when refuses and not apology", "when refuses")},
        {"support.rbr": GOOD},
        "Exclude the better tier's case from the worse one: `less_good when refuses and "
        "not apology`.",
    ),
    Case(
        "E202",
        "Some replies fall into no tier. The note gives one combination of answers that "
        "no rule covers.",
        {"support.rbr": sub(GOOD, "unacceptable  otherwise", "unacceptable  when not refuses and not apology")},
        {"support.rbr": GOOD},
        "Cover the missing case (here: apologises but does not refuse), or simply end "
        "with `unacceptable otherwise`.",
    ),
    Case(
        "E203",
        "A rule's condition can never be true (it contradicts itself, perhaps through a "
        "derived proposition), or an `otherwise` rule has nothing left to cover.",
        {
            "support.rbr": sub(
                GOOD,
                RT_SIMPLE,
                "derived polite_refusal = apology and refuses\n\n"
                + RT_SIMPLE.replace(
                    "less_good     when refuses and not apology",
                    "less_good     when polite_refusal and not refuses",
                ),
            )
        },
        {
            "support.rbr": sub(
                GOOD,
                RT_SIMPLE,
                "derived polite_refusal = apology and refuses\n\n"
                + RT_SIMPLE.replace(
                    "ideal         when apology and refuses", "ideal         when polite_refusal"
                ),
            )
        },
        "`polite_refusal` already requires `refuses`, so `polite_refusal and not refuses` "
        "is impossible. The intended rule was `refuses and not apology`.",
    ),
    Case(
        "E204",
        "`otherwise` means \"every reply no other rule covers\", so it must be the last "
        "rule of its response type.",
        {
            "support.rbr": sub(
                GOOD,
                "  ideal         when apology and refuses\n"
                "  less_good     when refuses and not apology\n"
                "  unacceptable  otherwise\n",
                "  unacceptable  otherwise\n"
                "  ideal         when apology and refuses\n"
                "  less_good     when refuses and not apology\n",
            )
        },
        {"support.rbr": GOOD},
        "Move the `otherwise` rule to the end.",
    ),
    Case(
        "E205",
        "The tier rules are too large for specc to prove exclusive and exhaustive "
        "within its memory budget (a million decision-diagram nodes). The size depends "
        "on the order in which propositions are declared: propositions that are "
        "combined with each other should be declared close together. Hand-written "
        "policies almost never meet this; generated ones can.",
        {"support.rbr": big_policy(interleaved=False)},
        {"support.rbr": big_policy(interleaved=True)},
        "Declare each pair together (`a1`, `b1`, `a2`, `b2`, ...). The rules are the "
        "same; only the declaration order changed, and the check finishes in well under a "
        "second.",
        bad_note="A generated policy with 42 propositions declared as `a1` ... `a21`, "
        "then `b1` ... `b21`, and a rule that pairs each `a` with its `b`:",
        bad_display=big_display(interleaved=False),
        fixed_display=big_display(interleaved=True),
    ),
    Case(
        "E301",
        "A test's givens cannot all hold for one reply (here `polite_refusal` needs "
        "`refuses`), so the test would check nothing. The note names the answer that "
        "clashes with the ones before it.",
        {"support.rbr": GOOD_DERIVED + TEST_CLASH},
        {"support.rbr": GOOD_DERIVED + TEST_CLASH.replace("refuses = false", "refuses = true")},
        "Fix the answer that is wrong, or drop it: a derived proposition in `given` "
        "already fixes the answers it is made of.",
    ),
    Case(
        "E302",
        "A test is missing a part: a test that expects a tier names its response type "
        "(`response_type NAME`); every test has at least one `expect`; a test with "
        "conversation turns has a `completion`; and a test either gives answers "
        "(`given`) or has a completion graded, not both.",
        {"support.rbr": GOOD + TEST_NO_TYPE},
        {"support.rbr": GOOD + TEST_NO_TYPE.replace("{\n  given", "{\n  response_type refuse\n  given")},
        "Add what is missing; here, the response type the tier belongs to.",
    ),
    Case(
        "E303",
        "A completion test is graded like a data row of its response type: only the "
        "propositions that type's rules and reward features use are graded. An "
        "expectation about any other proposition could never be checked.",
        {"support.rbr": GOOD + P_LONG + TEST_LONG},
        {
            "support.rbr": GOOD.replace(
                "  unacceptable  otherwise\n",
                "  unacceptable  otherwise\n  reward {\n    extra = [long_reply]\n  }\n",
            )
            + P_LONG
            + TEST_LONG
        },
        "Test the proposition under a response type that uses it, or make it a reward "
        "feature of this one with `extra`.",
    ),
    Case(
        "E304",
        "A file of tests has no header: it imports the one policy it tests, whose names "
        "are then in scope, and holds nothing but that import and tests. Here it "
        "imports a library instead of the policy.",
        {
            "support_test.rbr": 'import "lib/common.rbr"\n\n' + TEST_FILE,
            "support.rbr": HEADER + '\nimport "lib/common.rbr"\n\n' + RT_SIMPLE,
            "lib/common.rbr": P_APOLOGY + "\n" + P_REFUSES,
        },
        {
            "support_test.rbr": 'import "support.rbr"\n\n' + TEST_FILE,
            "support.rbr": HEADER + '\nimport "lib/common.rbr"\n\n' + RT_SIMPLE,
            "lib/common.rbr": P_APOLOGY + "\n" + P_REFUSES,
        },
        "Import the policy; its libraries come with it.",
        target="support_test.rbr",
        show=("support_test.rbr",),
    ),
    Case(
        "W001",
        "A proposition or derived proposition in the policy file is not used by any "
        "rule, `extra` list or constraint, so grading it would be wasted work. "
        "(Unused propositions of imported libraries are not reported, nor are those of a "
        "library checked on its own: a library exports them. Tests do not count as a use: "
        "a proposition only a test mentions is still never graded.)",
        {
            "support.rbr": sub(
                GOOD,
                P_REFUSES,
                P_REFUSES + '\nproposition long_reply {\n  match length > 80 words\n}\n',
            )
        },
        {
            "support.rbr": sub(
                GOOD,
                P_REFUSES,
                P_REFUSES + '\nproposition long_reply {\n  match length > 80 words\n}\n',
            ).replace(
                "  unacceptable  otherwise\n",
                "  unacceptable  otherwise\n  reward {\n    extra = [long_reply]\n  }\n",
            )
        },
        "Use it (here as an extra reward feature), or delete it.",
    ),
    Case(
        "W002",
        "A constraint's cost uses a proposition that none of the response types it "
        "covers needs for its rules or features. It still works (specc grades that "
        "proposition just for the cost), but it costs an extra grader call per reply.",
        {
            "support.rbr": sub(
                GOOD,
                P_REFUSES,
                P_REFUSES
                + '\nproposition threatens {\n  question = "Does the reply threaten the user?"\n'
                '  example yes { completion "Ask again and you\'ll be banned." }\n}\n',
            )
            + "\nconstraint no_threats {\n  cost = threatens\n  limit = 1%\n}\n"
        },
        {
            "support.rbr": sub(
                GOOD,
                P_REFUSES,
                P_REFUSES
                + '\nproposition threatens {\n  question = "Does the reply threaten the user?"\n'
                '  example yes { completion "Ask again and you\'ll be banned." }\n}\n',
            ).replace(
                "  unacceptable  otherwise\n",
                "  unacceptable  otherwise\n  reward {\n    extra = [threatens]\n  }\n",
            )
            + "\nconstraint no_threats {\n  cost = threatens\n  limit = 1%\n}\n"
        },
        "If the warning is expected, nothing needs fixing. To also let the reward use the "
        "proposition, list it in `extra`, as here.",
    ),
    Case(
        "W003",
        "The policy defines a name that an imported library also defines. The local "
        "definition wins; the warning makes sure that is intended.",
        {
            "support.rbr": HEADER + 'import "lib/common.rbr"\n\n' + P_APOLOGY + "\n" + RT_SIMPLE,
            "lib/common.rbr": "# Shared propositions.\n" + P_APOLOGY + "\n" + P_REFUSES,
        },
        {
            "support.rbr": HEADER + 'import "lib/common.rbr"\n\n' + RT_SIMPLE,
            "lib/common.rbr": "# Shared propositions.\n" + P_APOLOGY + "\n" + P_REFUSES,
        },
        "Drop the local copy and use the library's (or rename the local one).",
        show=("support.rbr", "lib/common.rbr"),
        show_fixed=("support.rbr",),
    ),
    Case(
        "W004",
        "A grader-answered proposition has no few-shot examples. Graders answer more "
        "accurately with at least one `yes` and one `no` example.",
        {
            "support.rbr": sub(
                GOOD, "  example yes { completion \"Sorry, I can't help with that.\" }\n", ""
            )
        },
        {
            "support.rbr": sub(
                GOOD,
                "  example yes { completion \"Sorry, I can't help with that.\" }\n",
                "  example yes { completion \"Sorry, I can't help with that.\" }\n"
                '  example no { completion "I can\'t help with that." }\n',
            )
        },
        "Add examples: here a `yes` and a `no`.",
    ),
    Case(
        "W005",
        "A tier in the `tiers` block is used by no response type. Check for a response "
        "type that forgot it, or remove the tier.",
        {
            "support.rbr": sub(
                GOOD,
                "\n" + P_APOLOGY,
                "\ntiers {\n  ideal\n  less_good\n  unacceptable\n  harmful\n}\n\n" + P_APOLOGY,
            )
        },
        {
            "support.rbr": sub(
                GOOD,
                "\n" + P_APOLOGY,
                "\ntiers {\n  ideal\n  less_good\n  unacceptable\n}\n\n" + P_APOLOGY,
            )
        },
        "Remove `harmful` (or add a rule for it to a response type).",
    ),
    Case(
        "W006",
        "An imported file contains something other than propositions and derived "
        "propositions (a grader, tiers or reward block, a response type, a constraint). "
        "Imports bring in propositions and derived propositions only, so it is ignored.",
        {
            "support.rbr": HEADER + 'import "lib/common.rbr"\n\n' + RT_SIMPLE,
            "lib/common.rbr": P_APOLOGY + "\n" + P_REFUSES + "\nreward {\n  margin = 0.5\n}\n",
        },
        {
            "support.rbr": HEADER
            + 'import "lib/common.rbr"\n\nreward {\n  margin = 0.5\n}\n\n'
            + RT_SIMPLE,
            "lib/common.rbr": P_APOLOGY + "\n" + P_REFUSES,
        },
        "Move the reward block into the policy.",
        show=("support.rbr", "lib/common.rbr"),
        show_fixed=("support.rbr", "lib/common.rbr"),
    ),
]


def write(root: Path, files: dict[str, str | bytes]) -> None:
    if root.exists():
        shutil.rmtree(root)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def run(root: Path, target: str) -> tuple[int, str]:
    # `python -m specc` with this interpreter and this source tree: no PATH, no venv.
    src = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, "-m", "specc", "check", target],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
    )
    return proc.returncode, (proc.stdout + proc.stderr).rstrip("\n")


def block(text: str, lang: str = "") -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}\n"


def show_files(files: dict[str, str | bytes], names: tuple[str, ...]) -> str:
    out = []
    for name in names:
        content = files[name]
        text = content.decode("cp1252") if isinstance(content, bytes) else content
        if len(names) > 1:
            out.append(f"`{name}`:\n")
        out.append(block(text))
    return "\n".join(out)


def _text(content: str | bytes) -> str:
    return content.decode("cp1252") if isinstance(content, bytes) else content


def excerpt(before: str | bytes, after: str | bytes, context: int = 1) -> str:
    """The lines of ``after`` that differ from ``before``, with some context; skipped
    stretches become ``...``. Returns the whole file when it is short or new."""
    import difflib

    old, new = _text(before).splitlines(), _text(after).splitlines()
    keep: set[int] = set()
    ops = difflib.SequenceMatcher(None, old, new).get_opcodes()
    if all(tag in ("equal", "delete") for tag, *_ in ops):
        removed = [line for tag, i1, i2, _j1, _j2 in ops if tag == "delete" for line in old[i1:i2]]
        while removed and not removed[0].strip():
            removed.pop(0)
        while removed and not removed[-1].strip():
            removed.pop()
        return "REMOVED\n" + "\n".join(removed)
    for tag, _i1, _i2, j1, j2 in ops:
        if tag == "equal":
            continue
        lo, hi = (j1, j2) if j2 > j1 else (j1, j1)
        for k in range(lo - context, hi + context):
            if 0 <= k < len(new):
                keep.add(k)
    if not keep or len(keep) >= len(new) - 2:
        return "\n".join(new)
    out: list[str] = []
    last = -1
    for k in sorted(keep):
        if k != last + 1:
            out.append("...")
        out.append(new[k])
        last = k
    if last != len(new) - 1:
        out.append("...")
    return "\n".join(out)


def show_excerpts(bad: dict[str, str | bytes], fixed: dict[str, str | bytes], names: tuple[str, ...]) -> str:
    out = []
    for name in names:
        if name in bad and _text(bad[name]) == _text(fixed[name]):
            if len(names) > 1:
                out.append(f"`{name}`: unchanged.\n")
            continue
        text = excerpt(bad.get(name, ""), fixed[name])
        where = f" from `{name}`" if len(names) > 1 else ""
        if text.startswith("REMOVED\n"):
            out.append(f"Delete these lines{where}:\n")
            out.append(block(text.removeprefix("REMOVED\n")))
            continue
        if len(names) > 1:
            out.append(f"`{name}`:\n")
        out.append(block(text))
    return "\n".join(out)


def shorten_e007(text: str) -> str:
    return text.replace("(" * 201, "((((...201 opening brackets...((((").replace(
        ")" * 201, "))))...201 closing brackets...))))"
    )


def main() -> None:
    paths = [a for a in sys.argv[1:] if a != "--check"]
    if len(paths) != 1 or not paths[0].endswith(".md"):
        sys.exit(f"usage: {Path(__file__).name} [--check] docs/diagnostics.md")
    target = Path(paths[0])
    work = Path(tempfile.mkdtemp(prefix="specc-diag-"))
    parts: list[str] = []
    problems: list[str] = []
    seen_codes: set[str] = set()
    samples: dict[str, str] = {}
    for i, case in enumerate(CASES):
        root = work / f"case{i}"
        write(root, case.bad)
        rc, out = run(root, case.run_target or case.target)
        samples.setdefault(case.code, out)
        if f"[{case.code}]" not in out:
            problems.append(f"{case.code}: not reported:\n{out}")
        write(root, case.fixed)
        frc, fout = run(root, case.target)
        if frc != 0 or fout != f"ok: {case.target}":
            problems.append(f"{case.code} fixed version is not clean:\n{fout}")
        title = CODES[case.code]
        if case.code not in seen_codes:
            parts.append(f"## {case.code}: {title}\n")
        seen_codes.add(case.code)
        parts.append(case.about + "\n")
        names = case.show or (case.target,)
        bad_text = block(case.bad_display) if case.bad_display else show_files(case.bad, names)
        if case.code == "E007":
            bad_text = shorten_e007(bad_text)
            out = shorten_e007(out)
        if case.bad_note:
            parts.append(case.bad_note + "\n")
        else:
            parts.append("A policy with the problem:\n")
        parts.append(bad_text)
        cmd = f"specc check {case.run_target or case.target}"
        parts.append(f"`{cmd}` prints (exit status {rc}):\n")
        parts.append(block(out))
        parts.append(f"**Fix.** {case.fix}\n")
        shown_fix = (
            block(case.fixed_display)
            if case.fixed_display
            else show_excerpts(case.bad, case.fixed, case.show_fixed or names)
        )
        if shown_fix:
            parts.append(shown_fix)
        parts.append(f"`specc check {case.target}` now prints `{fout}`.\n")
    missing = set(CODES) - seen_codes
    if missing:
        problems.append(f"codes without a case: {sorted(missing)}")
    if problems:
        print("\n\n".join(problems), file=sys.stderr)
        sys.exit(1)
    intro = (Path(__file__).parent / "diagnostics_intro.md").read_text(encoding="utf-8")
    index = "\n".join(
        f"| [{c}](#{c.lower()}-{anchor(CODES[c])}) | {CODES[c]} |" for c in CODES
    )
    text = intro.replace("{{E101}}", block(samples["E101"])).replace("{{INDEX}}", index).replace("{{GOOD}}", block(GOOD)) + "\n" + "\n".join(parts)
    shutil.rmtree(work)
    if "--check" in sys.argv:
        if target.read_text(encoding="utf-8") != text:
            print(f"{target} is stale: rerun {Path(__file__).name} {target}", file=sys.stderr)
            sys.exit(1)
        return
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}: {len(CASES)} cases, {len(seen_codes)} codes")


def anchor(title: str) -> str:
    import re

    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


if __name__ == "__main__":
    main()
