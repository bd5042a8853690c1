/** Prints the event catalogue (markdown), generated from the codec declarations: `npm run catalogue`. */
import { eventCatalogue } from '../projections/catalogue.ts';
import { commandArguments } from './arguments.ts';

commandArguments('Usage: npm run catalogue (prints the event catalogue, markdown, for README)', {});

process.stdout.write(`${eventCatalogue()}\n`);
