-- wrk script: a small non-streamed chat completion, as an agent's tool-planning call looks.
-- The key is LiteLLM's master key in bench/ (bench/litellm/serve.sh); the others ignore it.
wrk.method = "POST"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
