"""The HTTP plumbing every route sits behind: body size limits (body_limit), the NUL guard
(nul_guard), strict JSON bodies (strict_body), per-key rate limits (ratelimit), the Prometheus
endpoint (prometheus) and the one error handler that writes problem details (problems)."""
