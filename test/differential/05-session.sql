-- Session state: SET/SHOW/RESET, PREPARE/EXECUTE/DEALLOCATE, temp tables,
-- cursors, and psql's \gset, \gdesc (extended protocol), \gexec,
-- FETCH_COUNT (psql's own cursor).
CREATE TABLE kv (k int PRIMARY KEY, v text, ts timestamptz);
INSERT INTO kv SELECT g, 'v' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour'
  FROM generate_series(1, 12) g ORDER BY g;
-- SET / SHOW / RESET
SET TimeZone = 'Asia/Tokyo';
SHOW TimeZone;
SELECT ts FROM kv WHERE k = 1;
SET datestyle = 'SQL, DMY';
SELECT ts FROM kv WHERE k = 2;
SET intervalstyle = 'iso_8601';
SELECT interval '1 day 2 hours';
SET extra_float_digits = 0;
SELECT 0.1::float8 + 0.2::float8;
SET search_path = nosuch, public;
SHOW search_path;
SELECT count(*) FROM kv;
SET application_name = 'differential';
SELECT current_setting('application_name');
SET work_mem = '2MB';
SHOW work_mem;
SELECT set_config('work_mem', '3MB', false);
SHOW work_mem;
SET nosuch_parameter = 1;
SET work_mem = 'lots';
SHOW nosuch_parameter;
SET myapp.tenant = 'acme';
SHOW myapp.tenant;
SELECT current_setting('myapp.tenant');
-- SET LOCAL and SET inside transactions
BEGIN;
SET LOCAL TimeZone = 'UTC';
SHOW TimeZone;
COMMIT;
SHOW TimeZone;
BEGIN;
SET TimeZone = 'America/New_York';
ROLLBACK;
SHOW TimeZone;
BEGIN;
SAVEPOINT s;
SET TimeZone = 'Europe/Paris';
ROLLBACK TO s;
SHOW TimeZone;
SET TimeZone = 'Europe/Paris';
COMMIT;
SHOW TimeZone;
SELECT ts FROM kv WHERE k = 3;
RESET TimeZone;
RESET datestyle;
RESET ALL;
SHOW work_mem;
SHOW search_path;
SHOW myapp.tenant;
-- PREPARE / EXECUTE / DEALLOCATE
PREPARE ins (int, text) AS INSERT INTO kv (k, v) VALUES ($1, $2) RETURNING k, v;
PREPARE sel (int) AS SELECT k, v FROM kv WHERE k <= $1 ORDER BY k;
PREPARE upd AS UPDATE kv SET v = upper(v) WHERE k > 10;
EXECUTE ins (100, 'hundred');
EXECUTE ins (101, 'hundred-one');
EXECUTE ins (100, 'again');
EXECUTE ins ('x', 'bad');
EXECUTE sel (3);
EXECUTE upd;
-- the coordinator's own statements (pgquorum_<n>, docs/routing.md "Keyed statements as prepared statements") exist only through pgquorum
SELECT name, statement, parameter_types FROM pg_prepared_statements WHERE name !~ '^pgquorum_[0-9]+$' ORDER BY name;
PREPARE ins AS SELECT 1;
DEALLOCATE ins;
EXECUTE ins (102, 'gone');
DEALLOCATE nosuch;
BEGIN;
EXECUTE ins (103, 'x');
ROLLBACK;
PREPARE in_txn (int) AS DELETE FROM kv WHERE k = $1;
BEGIN;
EXECUTE in_txn (101);
EXECUTE sel (200);
COMMIT;
DEALLOCATE ALL;
SELECT count(*) FROM pg_prepared_statements;
-- temporary tables
CREATE TEMP TABLE scratch (id int PRIMARY KEY, note text);
INSERT INTO scratch VALUES (1, 'one'), (2, 'two');
UPDATE scratch SET note = note || '!' WHERE id = 2;
SELECT * FROM scratch ORDER BY id;
SELECT s.id, s.note, kv.v FROM scratch s JOIN kv ON kv.k = s.id ORDER BY s.id;
CREATE TEMP TABLE kv_copy AS SELECT * FROM kv WHERE k < 5 ORDER BY k;
SELECT count(*) FROM kv_copy;
DELETE FROM kv_copy WHERE k = 1;
INSERT INTO scratch SELECT k, v FROM kv WHERE k BETWEEN 3 AND 4 ORDER BY k;
SELECT * FROM scratch ORDER BY id;
BEGIN;
CREATE TEMP TABLE per_txn (a int) ON COMMIT DROP;
INSERT INTO per_txn VALUES (1);
SELECT * FROM per_txn;
COMMIT;
SELECT * FROM per_txn;
CREATE TEMP TABLE scratch (x int);
DROP TABLE scratch;
SELECT * FROM scratch;
DROP TABLE kv_copy;
-- cursors
DECLARE outside CURSOR FOR SELECT 1;
BEGIN;
DECLARE c1 CURSOR FOR SELECT k, v FROM kv ORDER BY k;
FETCH 2 FROM c1;
FETCH NEXT FROM c1;
MOVE FORWARD 3 IN c1;
FETCH FORWARD 2 FROM c1;
FETCH ALL FROM c1;
FETCH NEXT FROM c1;
CLOSE c1;
FETCH NEXT FROM c1;
ROLLBACK;
-- a cursor whose query writes: every FETCH advances the sequence
CREATE SEQUENCE cur_seq;
BEGIN;
DECLARE c5 CURSOR FOR SELECT nextval('cur_seq') AS n FROM generate_series(1, 5);
FETCH 2 FROM c5;
FETCH 1 FROM c5;
COMMIT;
SELECT nextval('cur_seq');
BEGIN;
UPDATE kv SET v = v || '*' WHERE k = 1;
DECLARE c2 SCROLL CURSOR FOR SELECT k, v FROM kv WHERE k <= 4 ORDER BY k;
FETCH LAST FROM c2;
FETCH PRIOR FROM c2;
FETCH ABSOLUTE 1 FROM c2;
FETCH RELATIVE 2 FROM c2;
DECLARE c3 CURSOR FOR SELECT k FROM kv WHERE k > 10 ORDER BY k FOR UPDATE;
FETCH c3;
UPDATE kv SET v = 'via cursor' WHERE CURRENT OF c3;
CLOSE ALL;
COMMIT;
BEGIN;
DECLARE held CURSOR WITH HOLD FOR SELECT k, v FROM kv WHERE k IN (1, 11) ORDER BY k;
COMMIT;
FETCH ALL FROM held;
CLOSE held;
BEGIN;
DECLARE c4 CURSOR FOR SELECT 1 / (k - 5) FROM kv ORDER BY k;
FETCH 3 FROM c4;
FETCH 3 FROM c4;
FETCH 1 FROM c4;
ROLLBACK;
-- psql \gset
SELECT count(*) AS n, max(k) AS maxk FROM kv \gset
\echo n=:n maxk=:maxk
SELECT v AS first_v FROM kv ORDER BY k LIMIT 1 \gset pre_
\echo :pre_first_v
SELECT 1 AS a WHERE false \gset
SELECT k FROM kv \gset
INSERT INTO kv (k, v) VALUES (200, 'gset') RETURNING k AS newk \gset
\echo newk=:newk
-- \gdesc: the extended protocol (Parse + Describe of an unnamed statement;
-- psql 15 has no \bind, that came in psql 16)
SELECT k, v, ts, k::numeric / 3 AS third FROM kv \gdesc
SELECT k, v FROM kv WHERE k = $1 AND v <> $2 \gdesc
INSERT INTO kv (k, v) VALUES ($1, $2) RETURNING k, v || '!' AS loud \gdesc
UPDATE kv SET v = v WHERE k = 0 \gdesc
SELECT nosuchcol FROM kv \gdesc
BEGIN;
INSERT INTO kv (k, v) VALUES (300, 'in txn');
DELETE FROM kv WHERE k = $1 RETURNING * \gdesc
SELECT count(*) FROM kv WHERE k = 300;
SELECT 1 / 0 \gdesc
COMMIT;
SELECT count(*) FROM kv WHERE k >= 300;
-- \gexec
SELECT format('INSERT INTO kv (k, v) VALUES (%s, %L)', 400 + g, 'gexec' || g) FROM generate_series(1, 3) g ORDER BY g \gexec
SELECT 'SELECT count(*) FROM kv WHERE v LIKE ''gexec%''' \gexec
-- FETCH_COUNT makes psql read results through a cursor of its own
\set FETCH_COUNT 4
SELECT k, v FROM kv ORDER BY k;
BEGIN;
SELECT k FROM kv WHERE k < 5 ORDER BY k;
COMMIT;
SELECT 1 / (k - 12) FROM kv ORDER BY k;
\unset FETCH_COUNT
-- \errverbose and full error fields
SELECT * FROM kv WHERE nosuchcol = 1;
\errverbose
\set VERBOSITY verbose
INSERT INTO kv (k, v) VALUES (1, 'dup');
\set VERBOSITY default
SELECT k, v FROM kv ORDER BY k;
