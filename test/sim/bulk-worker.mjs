// Worker-thread entry: Node 20 does not apply `--import tsx` inside workers, so register tsx here.
import { register } from 'tsx/esm/api';

register();
await import('./bulk.ts');
