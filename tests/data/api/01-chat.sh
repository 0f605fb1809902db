curl -sS -X POST "$API_URL/api/v1/llm/chat" \
  -H "Authorization: Bearer $API_KEY" \
  -H "Content-Type: application/json" \
  -d '{"message": "What does a connection refused error usually mean?", "context": {"service": "api-gateway"}, "conversation_history": [{"role": "user", "content": "Our API fails since the deploy."}], "max_tokens": 48, "temperature": 0.7}'
