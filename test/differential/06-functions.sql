-- Functions and procedures in SQL and PL/pgSQL called by SELECT, CALL, DO;
-- triggers; generated columns; notices and errors raised by functions.
CREATE TABLE account (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL DEFAULT 0,
  balance_cents bigint GENERATED ALWAYS AS ((balance * 100)::bigint) STORED);
CREATE TABLE audit (n serial PRIMARY KEY, account_id int, old_balance numeric, new_balance numeric, op text);
-- a pure SQL function
CREATE FUNCTION add3(a int, b int, c int DEFAULT 0) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b + c';
SELECT add3(1, 2), add3(1, 2, 3), add3(c => 10, a => 1, b => 1);
SELECT add3('x', 1);
SELECT add3(1);
-- a set-returning SQL function reading a table
INSERT INTO account (id, owner, balance) VALUES (1, 'ann', 100), (2, 'bob', 50.5), (3, 'cy', 0);
CREATE FUNCTION rich(min numeric) RETURNS SETOF account LANGUAGE sql STABLE AS $$
  SELECT * FROM account WHERE balance >= min ORDER BY id
$$;
SELECT * FROM rich(50);
SELECT owner FROM rich(0) WHERE id > 1;
-- a PL/pgSQL function that writes, called by SELECT
CREATE FUNCTION deposit(acc int, amount numeric) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
  nb numeric;
BEGIN
  IF amount <= 0 THEN
    RAISE EXCEPTION 'amount must be positive, got %', amount USING ERRCODE = '22023', HINT = 'Use withdraw().';
  END IF;
  UPDATE account SET balance = balance + amount WHERE id = acc RETURNING balance INTO nb;
  IF NOT FOUND THEN
    RAISE NOTICE 'no account %', acc;
    RETURN NULL;
  END IF;
  RETURN nb;
END
$$;
SELECT deposit(1, 25);
SELECT deposit(2, 0.25), deposit(3, 1);
SELECT deposit(42, 1);
SELECT deposit(1, -5);
SELECT id, deposit(id, id * 10) FROM account ORDER BY id;
SELECT id, balance, balance_cents FROM account ORDER BY id;
-- the function fails half way through a statement: nothing is kept
SELECT deposit(id, CASE WHEN id = 3 THEN -1 ELSE 1 END) FROM account ORDER BY id;
SELECT id, balance FROM account ORDER BY id;
-- inside a transaction with a savepoint
BEGIN;
SELECT deposit(1, 1000);
SAVEPOINT s;
SELECT deposit(1, -1);
ROLLBACK TO s;
SELECT deposit(2, 1000);
COMMIT;
SELECT id, balance FROM account ORDER BY id;
-- triggers
CREATE FUNCTION audit_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO audit (account_id, old_balance, op) VALUES (OLD.id, OLD.balance, TG_OP);
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.balance < 0 THEN
    RAISE EXCEPTION 'account % would go negative', NEW.id;
  END IF;
  INSERT INTO audit (account_id, old_balance, new_balance, op)
    VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.balance END, NEW.balance, TG_OP);
  RETURN NEW;
END
$$;
CREATE TRIGGER account_audit BEFORE INSERT OR UPDATE OR DELETE ON account
  FOR EACH ROW EXECUTE FUNCTION audit_trg();
INSERT INTO account (id, owner, balance) VALUES (4, 'dee', 10);
UPDATE account SET balance = balance - 5 WHERE id = 4;
UPDATE account SET balance = balance - 500 WHERE id = 4;
SELECT deposit(4, 2);
DELETE FROM account WHERE id = 3;
SELECT n, account_id, old_balance, new_balance, op FROM audit ORDER BY n;
-- procedures and DO blocks
CREATE PROCEDURE transfer(src int, dst int, amount numeric) LANGUAGE plpgsql AS $$
BEGIN
  UPDATE account SET balance = balance - amount WHERE id = src;
  UPDATE account SET balance = balance + amount WHERE id = dst;
END
$$;
CALL transfer(1, 2, 10);
CALL transfer(4, 1, 1000);
CALL nosuch_proc();
CREATE PROCEDURE bulk_open(n int) LANGUAGE sql AS $$
  INSERT INTO account (id, owner) SELECT 100 + g, 'bulk' || g FROM generate_series(1, n) g ORDER BY g
$$;
CALL bulk_open(3);
DO $$
BEGIN
  UPDATE account SET owner = upper(owner) WHERE id > 100;
  RAISE NOTICE 'uppercased % owners', (SELECT count(*) FROM account WHERE id > 100);
END
$$;
DO $$ BEGIN RAISE WARNING 'just a warning'; END $$;
DO $$ BEGIN PERFORM 1 / 0; END $$;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT id, owner FROM account WHERE id < 3 ORDER BY id LOOP
    RAISE NOTICE 'account % belongs to %', r.id, r.owner;
  END LOOP;
END
$$;
-- functions with OUT parameters, returning tables, overloading
CREATE FUNCTION stats(OUT n bigint, OUT total numeric) LANGUAGE sql STABLE AS
  'SELECT count(*), sum(balance) FROM account';
SELECT * FROM stats();
CREATE FUNCTION describe(x int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'int ' || x $$;
CREATE FUNCTION describe(x text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'text ' || x $$;
SELECT describe(1), describe('a');
SELECT describe(1.5);
CREATE OR REPLACE FUNCTION describe(x int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'integer ' || x $$;
SELECT describe(2);
CREATE OR REPLACE FUNCTION describe(x int) RETURNS int LANGUAGE sql AS $$ SELECT x $$;
DROP FUNCTION describe(text);
DROP FUNCTION describe;
DROP FUNCTION nosuch(int);
-- generated columns
CREATE TABLE box (w int, h int, area int GENERATED ALWAYS AS (w * h) STORED, label text GENERATED ALWAYS AS ('box ' || w || 'x' || h) STORED);
INSERT INTO box (w, h) VALUES (2, 3), (4, 5);
INSERT INTO box VALUES (1, 1, 1);
INSERT INTO box VALUES (1, 1, DEFAULT, DEFAULT) RETURNING *;
UPDATE box SET w = w + 1 RETURNING area, label;
ALTER TABLE box ADD COLUMN perim int GENERATED ALWAYS AS (2 * (w + h)) STORED;
SELECT * FROM box ORDER BY w, h;
-- the final state
SELECT id, owner, balance, balance_cents FROM account ORDER BY id;
SELECT count(*) FROM audit;
