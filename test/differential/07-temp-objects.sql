-- Temporary objects and the names that go with them: a temp table that
-- shadows a replicated one, temp objects that vanish (ON COMMIT DROP,
-- ROLLBACK, DISCARD) and replicated tables later created with their names,
-- implicitly temporary views, temp sequences, SELECT INTO TEMP, the pg_temp
-- schema named explicitly. (Statements that pgquorum may get wrong by ejecting
-- a node come last, so that the earlier ones are checked on all nodes.)
CREATE TABLE shadow (id int PRIMARY KEY, src text);
INSERT INTO shadow VALUES (1, 'replicated');
CREATE TEMP TABLE shadow (id int PRIMARY KEY, src text);
INSERT INTO shadow VALUES (1, 'temp'), (2, 'temp');
INSERT INTO public.shadow VALUES (2, 'replicated, qualified');
UPDATE public.shadow SET src = src || '!' WHERE id = 1;
SELECT * FROM shadow ORDER BY id;
SELECT * FROM public.shadow ORDER BY id;
SELECT * FROM pg_temp.shadow ORDER BY id;
SET search_path = public, pg_temp;
INSERT INTO shadow VALUES (3, 'replicated via search_path');
SELECT * FROM shadow ORDER BY id;
RESET search_path;
DROP TABLE shadow;
SELECT * FROM shadow ORDER BY id;
INSERT INTO shadow VALUES (4, 'replicated after the temp one is gone');
-- ON COMMIT DROP, then a replicated table with the same name
BEGIN;
CREATE TEMP TABLE gone1 (a int) ON COMMIT DROP;
INSERT INTO gone1 VALUES (1);
COMMIT;
CREATE TABLE gone1 (a int);
INSERT INTO gone1 VALUES (10), (11);
-- a temp table whose creation was rolled back
BEGIN;
CREATE TEMP TABLE gone2 (a int);
ROLLBACK;
CREATE TABLE gone2 (a int);
INSERT INTO gone2 VALUES (20);
-- a temp table created inside a rolled-back savepoint
BEGIN;
SAVEPOINT s;
CREATE TEMP TABLE gone3 (a int);
ROLLBACK TO s;
CREATE TABLE gone3 (a int);
INSERT INTO gone3 VALUES (30);
COMMIT;
-- DISCARD TEMP and DISCARD ALL
CREATE TEMP TABLE gone4 (a int);
CREATE TEMP TABLE gone5 (a int);
DISCARD TEMP;
CREATE TABLE gone4 (a int);
INSERT INTO gone4 VALUES (40);
PREPARE p1 AS SELECT 1 AS one;
DISCARD ALL;
CREATE TABLE gone5 (a int);
INSERT INTO gone5 VALUES (50);
EXECUTE p1;
PREPARE p1 AS SELECT 2 AS two;
EXECUTE p1;
-- SELECT INTO and CREATE TABLE AS, temporary and not
SELECT id, src INTO TEMP snap FROM public.shadow ORDER BY id;
SELECT * FROM snap ORDER BY id;
CREATE TEMP TABLE snap2 AS SELECT * FROM gone1 ORDER BY a;
SELECT count(*) FROM snap2;
SELECT s.id, g.a FROM snap s JOIN gone1 g ON g.a = s.id + 9 ORDER BY s.id;
CREATE TEMP TABLE tser (id serial, v text);
INSERT INTO tser (v) VALUES ('a'), ('b') RETURNING id, v;
-- an error inside a transaction block aborts it: what follows must fail
-- with 25P02 on both sides, and COMMIT must roll back. (A statement the
-- coordinator itself refuses -- temp rows into a replicated table -- does
-- the same: test/integration/core-basics.test.ts.)
BEGIN;
INSERT INTO shadow VALUES (10, 'in a failed transaction');
INSERT INTO shadow VALUES (1, 'duplicate');
SELECT 'after the error';
INSERT INTO shadow VALUES (11, 'in a failed transaction');
COMMIT;
SELECT * FROM shadow ORDER BY id;
SELECT 'gone1' AS t, count(*) FROM gone1 UNION ALL SELECT 'gone2', count(*) FROM gone2
  UNION ALL SELECT 'gone3', count(*) FROM gone3 UNION ALL SELECT 'gone4', count(*) FROM gone4
  UNION ALL SELECT 'gone5', count(*) FROM gone5 ORDER BY 1;
-- views over temp tables are temporary themselves
CREATE TEMP TABLE base_t (a int);
INSERT INTO base_t VALUES (1), (2), (3);
CREATE VIEW implicit_temp_view AS SELECT a * 10 AS b FROM base_t;
SELECT * FROM implicit_temp_view ORDER BY b;
CREATE TEMP VIEW explicit_temp_view AS SELECT count(*) AS n FROM base_t;
SELECT * FROM explicit_temp_view;
-- temp sequences
CREATE TEMP SEQUENCE tseq;
SELECT nextval('tseq'), nextval('tseq');
-- the pg_temp schema named explicitly
CREATE TABLE pg_temp.explicit_temp (a int);
INSERT INTO explicit_temp VALUES (1);
INSERT INTO pg_temp.explicit_temp VALUES (2);
SELECT count(*) FROM explicit_temp;
CREATE TEMP TABLE gone6 (a int);
DROP TABLE pg_temp.gone6;
CREATE TABLE gone6 (a int);
INSERT INTO gone6 VALUES (60);
SELECT count(*) FROM gone6;
SELECT * FROM shadow ORDER BY id;
