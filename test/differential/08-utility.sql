-- Statements that look like reads but write, utility commands that cannot
-- run in a transaction block, partitioned tables, roles, EXPLAIN ANALYZE of
-- writes, LOCK. (User-level PREPARE TRANSACTION is refused by pgquorum by
-- design, so it is not here.)
CREATE TABLE src (id int PRIMARY KEY, grp int NOT NULL, v text);
INSERT INTO src SELECT g, g % 3, 'v' || g FROM generate_series(1, 30) g ORDER BY g;
-- SELECT INTO creates and fills a table
SELECT id, v INTO copy1 FROM src WHERE grp = 0 ORDER BY id;
SELECT count(*) FROM copy1;
CREATE TABLE copy2 AS SELECT id, v FROM src WHERE grp = 1 ORDER BY id;
CREATE TABLE copy3 AS SELECT * FROM src WITH NO DATA;
CREATE TABLE IF NOT EXISTS copy2 AS SELECT 1;
-- data-modifying CTEs inside SELECT
WITH ins AS (INSERT INTO copy3 SELECT * FROM src WHERE id <= 3 ORDER BY id RETURNING id) SELECT count(*) FROM ins;
WITH del AS (DELETE FROM copy3 WHERE id = 1 RETURNING *) SELECT id, v FROM del;
WITH upd AS (UPDATE copy3 SET v = 'changed' WHERE id = 2 RETURNING id, v) SELECT * FROM upd UNION ALL SELECT 0, 'static';
TABLE copy3 ORDER BY id;
VALUES (1, 'one'), (2, 'two') ORDER BY 1;
-- EXPLAIN ANALYZE executes the write
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) INSERT INTO copy3 VALUES (100, 1, 'explained');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) UPDATE copy3 SET v = 'explained too' WHERE id = 100;
EXPLAIN (COSTS OFF) DELETE FROM copy3;
SELECT count(*) FROM copy3;
-- utility statements outside and inside transaction blocks
VACUUM src;
VACUUM (ANALYZE) copy1;
ANALYZE copy2;
BEGIN;
VACUUM src;
ROLLBACK;
CREATE INDEX CONCURRENTLY src_v_idx ON src (v);
BEGIN;
CREATE INDEX CONCURRENTLY src_grp_idx ON src (grp);
ROLLBACK;
REINDEX TABLE src;
CLUSTER src USING src_pkey;
CHECKPOINT;
DROP INDEX CONCURRENTLY src_v_idx;
VACUUM src \; SELECT 1;
-- LOCK
LOCK TABLE src IN SHARE MODE;
BEGIN;
LOCK TABLE src IN EXCLUSIVE MODE;
UPDATE src SET v = v || '+' WHERE id = 1;
COMMIT;
-- partitioned tables
CREATE TABLE meas (city int NOT NULL, day date NOT NULL, temp int) PARTITION BY RANGE (day);
CREATE TABLE meas_2023 PARTITION OF meas FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE meas_2024 PARTITION OF meas FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO meas VALUES (1, '2023-06-01', 20), (1, '2024-06-01', 22), (2, '2024-07-01', 30);
INSERT INTO meas VALUES (1, '2030-01-01', 0);
CREATE TABLE meas_default PARTITION OF meas DEFAULT;
INSERT INTO meas VALUES (1, '2030-01-01', 0);
UPDATE meas SET day = '2023-07-01' WHERE city = 2;
SELECT tableoid::regclass AS part, * FROM meas ORDER BY day;
ALTER TABLE meas DETACH PARTITION meas_2023;
SELECT count(*) FROM meas;
-- roles, grants and SET ROLE
CREATE ROLE diff_reader NOLOGIN;
GRANT SELECT ON src TO diff_reader;
SET ROLE diff_reader;
SELECT current_user, count(*) FROM src;
INSERT INTO src VALUES (999, 0, 'denied');
SELECT count(*) FROM copy1;
RESET ROLE;
SELECT current_user;
BEGIN;
SET LOCAL ROLE diff_reader;
UPDATE src SET v = 'denied' WHERE id = 2;
ROLLBACK;
REVOKE SELECT ON src FROM diff_reader;
DROP ROLE diff_reader;
-- the end state
SELECT * FROM src WHERE id <= 3 ORDER BY id;
