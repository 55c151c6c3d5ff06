import { useEffect, useRef } from "react";

/** Call `tick` now and every `ms` milliseconds while the component is shown; one call at a time. */
export function usePoll(tick, ms) {
  const latest = useRef(tick);
  latest.current = tick;
  useEffect(() => {
    let stopped = false;
    let timer = null;
    const run = async () => {
      try {
        await latest.current();
      } catch {
        /* the tick shows its own errors */
      }
      if (!stopped) timer = setTimeout(run, ms);
    };
    run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [ms]);
}
