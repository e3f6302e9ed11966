-- wrk script: a small non-streamed chat completion, as an agent's tool-planning call looks.
wrk.method = "POST"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
