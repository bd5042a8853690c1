/**
 * The exhaustiveness check that ends every `switch` over a union of events, commands or statuses: it compiles only
 * when every member has its case (the argument is then `never`), so a new member is a type error in every switch
 * that forgot it.
 */
export function unreachable(value: never): never {
  return value;
}
