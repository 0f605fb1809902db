curl -sS "$API_URL/api/v1/users/me" -H "Authorization: Bearer $API_KEY"
