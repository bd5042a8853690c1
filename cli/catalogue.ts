/** Prints the event catalogue (markdown), generated from the codec declarations: `npm run catalogue`. */
import { eventCatalogue } from '../projections/catalogue.ts';

process.stdout.write(`${eventCatalogue()}\n`);
