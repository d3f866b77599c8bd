// Removes secrets from SQL text before it goes into a log line or an error
// detail: the literal after PASSWORD (CREATE/ALTER ROLE/USER), and
// password=... in connection strings (CREATE SUBSCRIPTION, dblink).
const PASSWORD_LITERAL = /(\bPASSWORD\s+)(E?'(?:[^']|'')*'|\$[A-Za-z_0-9]*\$[\s\S]*?\$[A-Za-z_0-9]*\$)/gi;
const CONNSTR_PASSWORD = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+)/gi;

export function redactSql(text: string): string {
  if (!/password/i.test(text)) return text;
  return text.replace(PASSWORD_LITERAL, "$1'***'").replace(CONNSTR_PASSWORD, '$1***');
}
