#!/usr/bin/env bash
# ConversationStore.recorded_elsewhere on PostgreSQL with 2,000,000 messages (100,000 threads in
# 20 channels, one row every 10 minutes of history): EXPLAIN ANALYZE of its statement before
# (created_at alone bounds the rows: a sequential scan of messages) and after 1f10db5 (the
# channel's conversations touched since), alternating, 6 pairs; prints "old|new <ms>".
# Needs a PostgreSQL superuser at 127.0.0.1:5432 (user postgres); creates and drops its database.
set -euo pipefail
PG=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -Atq)
DB=bench_recorded_elsewhere_$$
"${PG[@]}" -d postgres -c "CREATE DATABASE $DB"
trap '"${PG[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
cd "$(dirname "$0")/.."
python -c "import asyncio; from botkit.store.migrate import upgrade; asyncio.run(upgrade('postgresql+asyncpg://postgres@127.0.0.1:5432/$DB'))"
"${PG[@]}" -d "$DB" <<'SQL'
INSERT INTO conversations (platform, workspace, channel, thread, created_at, updated_at)
SELECT 'slack', 'T1', 'C' || (g % 20), 't' || g, now() - (100000 - g) * interval '10 minutes',
       now() - (100000 - g) * interval '10 minutes'
FROM generate_series(1, 100000) g;
INSERT INTO messages (conversation_id, role, content, status, platform_message_ids, created_at, updated_at)
SELECT c.id, CASE WHEN k % 2 = 0 THEN 'user' ELSE 'assistant' END, 'some text of an answer', 'complete',
       json_build_array(c.id::text || '.' || k), c.created_at, c.created_at
FROM conversations c, generate_series(1, 20) k;
ANALYZE;
SQL
BASE="SELECT messages.platform_message_ids FROM messages JOIN conversations ON conversations.id = messages.conversation_id WHERE conversations.platform = 'slack' AND conversations.workspace = 'T1' AND conversations.channel = 'C0' AND messages.role = 'assistant' AND messages.id != 5 AND messages.created_at >= now() - interval '1 hour'"
for _ in 1 2 3 4 5 6; do
  for q in old new; do
    extra=""
    [ "$q" = new ] && extra=" AND conversations.updated_at >= now() - interval '65 minutes'"
    ms=$("${PG[@]}" -d "$DB" -c "EXPLAIN (ANALYZE, FORMAT JSON) $BASE$extra" \
      | python -c 'import json, sys; print(json.load(sys.stdin)[0]["Execution Time"])')
    echo "$q $ms"
  done
done
uptime
