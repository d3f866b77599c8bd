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

test('every spelling of the password literal is hidden as a whole', () => {
  const cases: [string, string][] = [
    ["ALTER ROLE r WITH ENCRYPTED PASSWORD 'secret' LOGIN", "ALTER ROLE r WITH ENCRYPTED PASSWORD '***' LOGIN"],
    ["ALTER USER r PASSWORD E'sec\\'ret' VALID UNTIL 'infinity'", "ALTER USER r PASSWORD '***' VALID UNTIL 'infinity'"],
    ["ALTER USER r PASSWORD e'a\\\\' LOGIN", "ALTER USER r PASSWORD '***' LOGIN"],
    ['ALTER ROLE r PASSWORD $pw$se$$cr$x$et$pw$ LOGIN', "ALTER ROLE r PASSWORD '***' LOGIN"],
    ["ALTER ROLE r PASSWORD U&'s\\0065cret' LOGIN", "ALTER ROLE r PASSWORD '***' LOGIN"],
    ["ALTER ROLE r PASSWORD U&'s!0065cret' UESCAPE '!' LOGIN", "ALTER ROLE r PASSWORD '***' LOGIN"],
    ["ALTER ROLE r PASSWORD 'sec'\n'ret' LOGIN", "ALTER ROLE r PASSWORD '***' LOGIN"],
    ["ALTER ROLE r PASSWORD /* c */ 'secret'", "ALTER ROLE r PASSWORD /* c */ '***'"],
    ["ALTER ROLE r PASSWORD\n-- c\n'secret'", "ALTER ROLE r PASSWORD\n-- c\n'***'"],
    ["CREATE USER \"ü\" PASSWORD 'sécrèt€' IN ROLE g", "CREATE USER \"ü\" PASSWORD '***' IN ROLE g"],
    ["CREATE GROUP g PASSWORD 'a'; ALTER ROLE h PASSWORD 'b'", "CREATE GROUP g PASSWORD '***'; ALTER ROLE h PASSWORD '***'"],
    ["ALTER ROLE r PASSWORD 'unterminated secret", "ALTER ROLE r PASSWORD '***'"],
    // standard_conforming_strings off: PostgreSQL reads 'a\' b' as one literal
    ["ALTER ROLE r PASSWORD 'a\\' secret' LOGIN", "ALTER ROLE r PASSWORD '***' LOGIN"],
  ];
  for (const [input, want] of cases) {
    assert.equal(redactSql(input), want, input);
    assert.doesNotMatch(redactSql(input), /secret|sec|ret|sécrèt/, input);
  }
  // The word inside other literals or identifiers is not a PASSWORD option.
  assert.equal(redactSql("SELECT 'password' AS my_password"), "SELECT 'password' AS my_password");
  assert.equal(redactSql('ALTER ROLE r PASSWORD NULL'), 'ALTER ROLE r PASSWORD NULL');
});

test('connection strings: quoted values, doubled quotes inside SQL literals, URIs', () => {
  assert.equal(
    redactSql("CREATE SUBSCRIPTION s CONNECTION 'host=a password=''x y'' dbname=d' PUBLICATION p"),
    "CREATE SUBSCRIPTION s CONNECTION 'host=a password=*** dbname=d' PUBLICATION p",
  );
  assert.equal(
    redactSql("SELECT dblink_connect($$host=a password='x y' dbname=d$$)"),
    "SELECT dblink_connect($$host=a password=*** dbname=d$$)",
  );
  assert.equal(
    redactSql("CREATE SUBSCRIPTION s CONNECTION 'postgresql://rep:hunter2@db1:5432/app' PUBLICATION p"),
    "CREATE SUBSCRIPTION s CONNECTION 'postgresql://rep:***@db1:5432/app' PUBLICATION p",
  );
  assert.equal(
    redactSql("CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password 'hunter2')"),
    "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password '***')",
  );
});
