import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactSql } from '../../src/sql/redact.js';

test('passwords in role statements and connection strings are hidden', () => {
  assert.equal(redactSql("CREATE ROLE bob LOGIN PASSWORD 'se''cret'"), "CREATE ROLE bob LOGIN PASSWORD '***'");
  assert.equal(redactSql("alter user x with password $$p$$"), "alter user x with password '***'");
  assert.equal(
    redactSql("CREATE SUBSCRIPTION s CONNECTION 'host=a password=hunter2 dbname=x' PUBLICATION p"),
    "CREATE SUBSCRIPTION s CONNECTION 'host=a password=*** dbname=x' PUBLICATION p",
  );
  assert.equal(redactSql('SELECT 1'), 'SELECT 1');
});
