curl -sS "$API_URL/api/v1/llm/models" -H "Authorization: Bearer $API_KEY"
