"""Condition 5's translator: what is translated, how it is asked for, and how answers are trusted.

- :mod:`.segments` finds the translatable parts of a condition-2 file (user identifiers,
  comments, docstrings, string literals) by ``tokenize`` spans, puts translations back
  into exactly those spans, and checks the result (token skeleton, AST).
- :mod:`.prompt` is the versioned prompt and the chunking: segments go to the model as
  a JSON request, the answer is a JSON mapping id -> translation.
- :mod:`.backends` calls Cohere, an OpenAI-compatible server or the offline glossaries,
  with pacing, bounded retries and the response cache of :mod:`.cache`.

Nothing here knows about DVC; ``stages/translate.py`` is the stage.
"""
