curl -sS "$API_URL/api/v1/llm/health" -H "Authorization: Bearer $API_KEY"
