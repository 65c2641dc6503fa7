/**
 * The one error type config/ throws: every problem found in a bundle's config.json, each named by its
 * JSON path, collected before anything is created.
 */
import { LifecycleError } from '../errors/index.js';

/** One problem in config.json: where (a JSON path such as `process.rlimits[1].type`) and what. */
export interface ConfigIssue {
  /** JSON path of the offending field (`mounts[3].destination`, `linux.sysctl["net.ipv4.ip_forward"]`); `config.json` for the file itself. */
  path: string;
  /** Why the field is rejected, e.g. `unknown rlimit "RLIMIT_FOO"`. */
  message: string;
}

/** Render one issue as `path: message` (just the message when the path is empty). */
export function formatIssue(issue: ConfigIssue): string {
  return issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`;
}

/**
 * A bundle's config.json was rejected. `issues` lists every problem found (not only the first); the
 * message is the single issue, or a count followed by one issue per line.
 */
export class ConfigError extends LifecycleError {
  /** Every problem found, in the order the fields were checked. */
  readonly issues: readonly ConfigIssue[];

  /** @param issues - at least one problem; the message is built from them. */
  constructor(issues: readonly ConfigIssue[]) {
    super('ConfigInvalid', ConfigError.describe(issues), issues[0]?.path ? { field: issues[0].path } : {});
    this.name = 'ConfigError';
    this.issues = issues.map((i) => ({ path: i.path, message: i.message }));
  }

  /** The message for a list of issues: one issue as `path: message`, several as a count and one per line. */
  static describe(issues: readonly ConfigIssue[]): string {
    if (issues.length === 0) return 'invalid config.json';
    if (issues.length === 1) return formatIssue(issues[0]);
    return `config.json has ${issues.length} problems:\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`;
  }
}
