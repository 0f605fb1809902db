curl -sS -X POST "$API_URL/api/v1/llm/root-cause" \
  -H "Authorization: Bearer $API_KEY" \
  -H "Content-Type: application/json" \
  -d '{"log_entries": [{"level": "ERROR", "message": "Connection refused to db-primary:5432", "timestamp": "2024-06-02T08:30:11Z", "source": "api-gateway", "host": "web-7"}, {"level": "ERROR", "message": "Connection refused to db-primary:5432", "timestamp": "2024-06-02T08:30:41Z", "source": "api-gateway"}, {"level": "WARN", "message": "Retrying in 30s", "timestamp": "2024-06-02T08:30:42Z", "source": "api-gateway"}], "prompt": "What is failing and why?", "analysis_type": "root_cause", "max_tokens": 144}'
