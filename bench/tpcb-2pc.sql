-- pgbench's built-in TPC-B transaction, committed with PostgreSQL's own
-- two-phase commit (PREPARE TRANSACTION, COMMIT PREPARED) on one node: the
-- "plain, 2PC" reference row of `make bench` (bench/run.sh). What a single
-- node pays for two-phase commit, with no coordinator in between.
\set aid random(1, 100000 * :scale)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
\set g random(1, 1000000000000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
PREPARE TRANSACTION 'bench_:client_id_:g';
COMMIT PREPARED 'bench_:client_id_:g';
