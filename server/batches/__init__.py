"""The OpenAI Files and Batch APIs: JSONL files of requests run at the lowest priority, durably."""
