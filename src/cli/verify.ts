// `pgquorum verify --config FILE`: compares the `up` nodes at one consistent
// cut (src/verify/verify.ts). Exit 0 identical, 1 different, 2 could not check.
import { ConfigError } from '../errors.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { UsageError, type Parsed } from './args.js';
import { summaryLine, verify } from '../verify/verify.js';

export async function cmdVerify(p: Parsed): Promise<number> {
  const file = p.values.config as string | undefined;
  if (file === undefined) throw new UsageError('--config FILE is required', 'verify');
  let config: Config;
  try {
    config = loadConfig(file, process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`pgquorum: ${e.message}\n`);
    return 2;
  }
  const json = p.values.json === true;
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const report = await verify({
    config,
    user: p.values.user as string | undefined,
    dbname: p.values.dbname as string | undefined,
    table: p.values.table as string | undefined,
    chunkRows: p.values['chunk-rows'] as number,
    host: p.values.host as string | undefined,
    port: p.values.port as number | undefined,
    print: json ? undefined : out,
  });
  if (json) out(JSON.stringify(report, null, 2));
  else if (report.exitCode === 2) process.stderr.write(`pgquorum: ${summaryLine(report)}\n`);
  else out(summaryLine(report));
  return report.exitCode;
}
