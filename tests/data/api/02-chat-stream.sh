curl -sS -N -X POST "$API_URL/api/v1/llm/chat/stream" \
  -H "Authorization: Bearer $API_KEY" \
  -H "Content-Type: application/json" \
  -d '{"message": "Name two log levels.", "max_tokens": 32}'
