"""Pure translation between wire formats.

The internal shape is OpenAI's Chat Completions format as plain dicts (request,
`chat.completion`, `chat.completion.chunk`), with a few extensions:

- `reasoning_content: str` on an assistant message and on a stream delta carries
  reasoning (OpenAI reasoning summaries, Gemini thought summaries);
- the request may carry the gateway's unified parameters the policy stage produced:
  `max_output_tokens` (the one max-tokens parameter), `reasoning_effort`,
  `thinking_level`, `thinking_budget`, `include_thoughts`;
- usage is chat usage: `prompt_tokens` includes cached tokens
  (`prompt_tokens_details.cached_tokens`), `completion_tokens` includes reasoning
  (`completion_tokens_details.reasoning_tokens`).

Chat clients on chat upstreams never go through it at all (passthrough); every other
pair is client -> internal -> upstream and back, so each wire format needs one
converter in each direction, not one per pair.
"""
