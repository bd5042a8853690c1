/** A gate a test opens when it chooses: a task awaits `opened`; the test calls `open()`. */
export function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}
