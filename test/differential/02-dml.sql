-- DML: multi-row INSERT, INSERT ... SELECT ... ORDER BY, UPDATE, DELETE,
-- RETURNING, ON CONFLICT, writable CTEs, serial defaults.
CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL DEFAULT 0, price numeric(8,2));
CREATE TABLE log (seq serial PRIMARY KEY, item_id int, action text, qty int);
INSERT INTO item VALUES (1, 'apple', 10, 0.50), (2, 'pear', 5, 0.75), (3, 'plum', 0, 1.20);
INSERT INTO item (id, name) VALUES (4, 'fig');
INSERT INTO item (id, name, qty, price)
  SELECT 10 + g, 'bulk' || g, g * 3, g * 1.5 FROM generate_series(1, 8) g ORDER BY g;
INSERT INTO item SELECT 4, 'dup', 1, 1;
INSERT INTO item (id, name) VALUES (5, NULL);
SELECT * FROM item ORDER BY id;
-- RETURNING
INSERT INTO item VALUES (20, 'kiwi', 7, 0.30), (21, 'lime', 2, 0.25) RETURNING id, name, qty * price AS value;
UPDATE item SET qty = qty + 1 WHERE id IN (1, 2, 3) RETURNING id, qty;
UPDATE item SET price = price * 2 WHERE name LIKE 'bulk%' AND qty > 10;
UPDATE item SET qty = 0 WHERE false;
DELETE FROM item WHERE id = 21 RETURNING *;
DELETE FROM item WHERE id = 999;
-- UPDATE ... FROM and DELETE ... USING
CREATE TABLE restock (item_id int, add_qty int);
INSERT INTO restock VALUES (3, 50), (4, 5), (99, 1);
UPDATE item i SET qty = i.qty + r.add_qty FROM restock r WHERE r.item_id = i.id RETURNING i.id, i.qty;
DELETE FROM restock r USING item i WHERE r.item_id = i.id;
SELECT * FROM restock ORDER BY item_id;
-- ON CONFLICT
INSERT INTO item VALUES (1, 'apple', 99, 9.99) ON CONFLICT DO NOTHING;
INSERT INTO item VALUES (1, 'apple', 99, 9.99) ON CONFLICT (id) DO NOTHING RETURNING id;
INSERT INTO item VALUES (1, 'apple2', 3, 0.55), (30, 'grape', 4, 2.00)
  ON CONFLICT (id) DO UPDATE SET qty = item.qty + EXCLUDED.qty, name = EXCLUDED.name
  RETURNING id, name, qty;
INSERT INTO item VALUES (2, 'pear', 1, 1) ON CONFLICT (id) DO UPDATE SET qty = EXCLUDED.qty WHERE item.qty > 100;
INSERT INTO item VALUES (30, 'x', 1, 1), (30, 'y', 1, 1) ON CONFLICT (id) DO UPDATE SET qty = 0;
INSERT INTO item VALUES (31, 'z', 1, 1) ON CONFLICT (name) DO NOTHING;
-- writable CTEs
WITH moved AS (
  DELETE FROM item WHERE qty = 0 RETURNING id, name, qty
)
INSERT INTO log (item_id, action, qty) SELECT id, 'deleted ' || name, qty FROM moved ORDER BY id, name, qty;
WITH up AS (
  UPDATE item SET qty = qty - 1 WHERE id <= 3 RETURNING id, qty
)
INSERT INTO log (item_id, action, qty) SELECT id, 'sold', qty FROM up ORDER BY id, qty RETURNING seq, item_id, action;
WITH s AS (SELECT sum(qty) AS total FROM item) SELECT total FROM s;
-- serial defaults and a failed insert that consumed one
INSERT INTO log (item_id, action) VALUES (1, 'a'), (2, 'b') RETURNING seq;
INSERT INTO log (seq, item_id, action) VALUES (1, 1, 'clash');
INSERT INTO log (item_id, action, qty) VALUES (1, 'bad', 'notanumber');
INSERT INTO log (item_id, action, qty) VALUES (1, 'bad', 1/0);
INSERT INTO log (item_id, action) VALUES (3, 'c') RETURNING seq;
-- DEFAULT keyword and INSERT ... DEFAULT VALUES
CREATE TABLE d (id serial, a int DEFAULT 42, b text DEFAULT 'dflt');
INSERT INTO d DEFAULT VALUES;
INSERT INTO d VALUES (DEFAULT, DEFAULT, 'x'), (DEFAULT, 7, DEFAULT);
UPDATE d SET a = DEFAULT WHERE id = 3;
SELECT * FROM d ORDER BY id;
-- TRUNCATE
CREATE TABLE junk AS SELECT g AS n FROM generate_series(1, 100) g;
SELECT count(*) FROM junk;
TRUNCATE junk;
SELECT count(*) FROM junk;
TRUNCATE restock, junk RESTART IDENTITY;
-- SELECT ... FOR UPDATE / locking reads
SELECT id, name FROM item WHERE id < 3 ORDER BY id FOR UPDATE;
-- bigger statements
INSERT INTO log (item_id, action, qty)
  SELECT i.id, 'audit', i.qty FROM item i JOIN (VALUES (1), (2), (30)) v(id) ON v.id = i.id ORDER BY i.id, i.qty;
UPDATE log SET qty = coalesce(qty, 0) * 10 WHERE action = 'audit';
SELECT * FROM item ORDER BY id;
SELECT * FROM log ORDER BY seq;
SELECT * FROM d ORDER BY id;
