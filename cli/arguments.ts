/**
 * Command-line arguments of the operations commands, parsed strictly: `--help` (or `-h`) prints the usage and exits 0
 * before the command does anything (no migration applied, no key rotated); an unknown option, a missing value or
 * an unexpected argument prints what is wrong and the usage, and exits 2.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function commandArguments<O extends Options>(usage: string, options: O, allowPositionals = false) {
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${usage}\n`);
    process.exit(2);
  }
  if (parsed.values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return parsed as unknown as { values: { [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : string }; positionals: string[] };
}

/** Runs an operations command's `main` and exits with its code; an error is printed after `failure` and exits 2 (it could not run). */
export function exitWith(main: () => Promise<number>, failure: string): void {
  main().then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`${failure}: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(2);
    },
  );
}
