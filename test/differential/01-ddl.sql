-- DDL: schemas, tables with constraints, indexes, views, sequences,
-- ALTER TABLE, types, generated and identity columns, DROP.
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.posint AS int CHECK (VALUE > 0);
CREATE TABLE app.dept (
  id   int PRIMARY KEY,
  name text NOT NULL UNIQUE
);
CREATE TABLE app.emp (
  id      int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  dept_id int NOT NULL REFERENCES app.dept (id) ON DELETE CASCADE,
  name    text NOT NULL,
  salary  numeric(10,2) NOT NULL DEFAULT 1000 CHECK (salary > 0),
  bonus   numeric(10,2) GENERATED ALWAYS AS (salary * 0.1) STORED,
  mood    app.mood DEFAULT 'ok',
  level   app.posint
);
\d app.emp
CREATE INDEX emp_name_idx ON app.emp (name);
CREATE UNIQUE INDEX emp_dept_name_uq ON app.emp (dept_id, lower(name));
CREATE INDEX emp_rich_idx ON app.emp (salary) WHERE salary > 5000;
INSERT INTO app.dept VALUES (1, 'eng'), (2, 'ops'), (3, 'sales');
INSERT INTO app.emp (dept_id, name, salary, level) VALUES (1, 'ann', 6000, 3), (1, 'bob', 4000, 2), (2, 'cy', 3000, 1);
INSERT INTO app.emp (dept_id, name, mood) VALUES (3, 'dee', 'happy');
SELECT * FROM app.emp ORDER BY id;
-- constraint violations
INSERT INTO app.emp (dept_id, name) VALUES (9, 'nobody');
INSERT INTO app.emp (dept_id, name) VALUES (1, 'ANN');
INSERT INTO app.emp (dept_id, name, salary) VALUES (1, 'neg', -1);
INSERT INTO app.emp (dept_id, name, level) VALUES (1, 'zero', 0);
INSERT INTO app.emp (id, dept_id, name) VALUES (100, 1, 'forced');
INSERT INTO app.emp (dept_id, name, mood) VALUES (1, 'weird', 'angry');
UPDATE app.emp SET bonus = 1 WHERE id = 1;
-- the failed inserts above used identity values
INSERT INTO app.emp (dept_id, name) VALUES (2, 'eve') RETURNING id, name, bonus;
-- views and materialized views
CREATE VIEW app.dept_pay AS
  SELECT d.name AS dept, count(e.id) AS n, coalesce(sum(e.salary), 0) AS total
  FROM app.dept d LEFT JOIN app.emp e ON e.dept_id = d.id GROUP BY d.name;
SELECT * FROM app.dept_pay ORDER BY dept;
CREATE MATERIALIZED VIEW app.dept_pay_mv AS SELECT * FROM app.dept_pay ORDER BY dept;
UPDATE app.emp SET salary = salary + 100 WHERE dept_id = 1;
SELECT * FROM app.dept_pay_mv ORDER BY dept;
REFRESH MATERIALIZED VIEW app.dept_pay_mv;
SELECT * FROM app.dept_pay_mv ORDER BY dept;
CREATE OR REPLACE VIEW app.dept_pay AS
  SELECT d.name AS dept, count(e.id) AS n, coalesce(sum(e.salary), 0) AS total, max(e.salary) AS top
  FROM app.dept d LEFT JOIN app.emp e ON e.dept_id = d.id GROUP BY d.name;
SELECT * FROM app.dept_pay ORDER BY dept;
-- an updatable view
CREATE VIEW app.eng AS SELECT id, dept_id, name, salary FROM app.emp WHERE dept_id = 1 WITH CHECK OPTION;
UPDATE app.eng SET salary = salary * 2 WHERE name = 'bob';
INSERT INTO app.eng (dept_id, name) VALUES (2, 'wrongdept');
SELECT name, salary, bonus FROM app.emp ORDER BY id;
-- sequences
CREATE SEQUENCE app.tickets START 100 INCREMENT 10;
SELECT nextval('app.tickets');
SELECT nextval('app.tickets'), nextval('app.tickets');
SELECT currval('app.tickets');
SELECT setval('app.tickets', 500);
SELECT nextval('app.tickets');
ALTER SEQUENCE app.tickets RESTART WITH 7 INCREMENT BY 1;
SELECT nextval('app.tickets');
CREATE SEQUENCE app.small MAXVALUE 2;
SELECT nextval('app.small');
SELECT nextval('app.small');
SELECT nextval('app.small');
SELECT last_value, is_called FROM app.tickets;
CREATE TABLE app.ser (id serial PRIMARY KEY, b bigserial, v text);
INSERT INTO app.ser (v) VALUES ('a'), ('b');
INSERT INTO app.ser (v) VALUES ('c') RETURNING *;
SELECT * FROM app.ser ORDER BY id;
-- ALTER TABLE in many forms
ALTER TABLE app.ser ADD COLUMN w int DEFAULT 7;
ALTER TABLE app.ser ADD COLUMN created_by text NOT NULL DEFAULT 'script';
ALTER TABLE app.ser ALTER COLUMN w SET NOT NULL;
ALTER TABLE app.ser ALTER COLUMN w TYPE bigint;
ALTER TABLE app.ser RENAME COLUMN v TO label;
ALTER TABLE app.ser ADD CONSTRAINT label_short CHECK (length(label) < 5);
ALTER TABLE app.ser ADD CONSTRAINT label_uq UNIQUE (label);
INSERT INTO app.ser (label) VALUES ('toolong');
INSERT INTO app.ser (label) VALUES ('a');
ALTER TABLE app.ser DROP CONSTRAINT label_short;
ALTER TABLE app.ser DROP COLUMN b;
ALTER TABLE app.ser ALTER COLUMN w DROP DEFAULT;
ALTER TABLE app.ser RENAME TO serials;
ALTER TABLE app.serials SET SCHEMA public;
\d public.serials
SELECT * FROM serials ORDER BY id;
ALTER TABLE nosuch ADD COLUMN x int;
ALTER TABLE IF EXISTS nosuch ADD COLUMN x int;
COMMENT ON TABLE serials IS 'renamed';
SELECT obj_description('public.serials'::regclass, 'pg_class');
SELECT conname, contype, pg_get_constraintdef(oid) AS def
  FROM pg_constraint WHERE connamespace = 'app'::regnamespace ORDER BY conname;
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname IN ('app', 'public') ORDER BY indexname;
-- DROP
DROP INDEX app.emp_rich_idx;
DROP VIEW app.eng;
DROP TABLE app.dept;
DROP TABLE app.dept CASCADE;
DROP TABLE IF EXISTS app.nothing_here;
DROP TABLE app.nothing_here;
DROP SEQUENCE app.small;
DROP MATERIALIZED VIEW app.dept_pay_mv;
\dt app.*
CREATE SCHEMA scratch;
CREATE TABLE scratch.a (id int PRIMARY KEY);
CREATE TABLE scratch.b (a_id int REFERENCES scratch.a);
CREATE VIEW scratch.v AS SELECT * FROM scratch.a;
DROP SCHEMA scratch;
DROP SCHEMA scratch CASCADE;
DROP SCHEMA IF EXISTS scratch;
\dn
SELECT * FROM app.emp ORDER BY id;
