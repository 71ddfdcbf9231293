"""The smallest useful policy: one LLM-graded proposition, one response type, for
tests that drive the command line and need an artifact and a model to grade with."""

MINI_SPEC = """\
policy "mini" version "1.0.0"

proposition apology {
  question = "Does the final reply apologise?"
  example yes { completion "Sorry, I can't." }
  example no { completion "Here it is." }
}

response_type comply "Comply" {
  ideal        when not apology
  unacceptable otherwise
}
"""
