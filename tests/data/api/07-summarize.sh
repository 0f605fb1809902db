curl -sS -X POST "$API_URL/api/v1/llm/summarize" \
  -H "Authorization: Bearer $API_KEY" \
  -H "Content-Type: application/json" \
  -d '{"last_hours": 24, "analysis_type": "summarization"}'
