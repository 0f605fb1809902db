curl -sS -X POST "$API_URL/api/v1/llm/query" \
  -H "Authorization: Bearer $API_KEY" \
  -H "Content-Type: application/json" \
  -d '{"question": "Which sources had critical findings?", "last_hours": 24}'
