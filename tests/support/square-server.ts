/** The tests' Square: the application's simulator (adapters/square/simulator/), on its own socket, state in memory. */
export * from '../../adapters/square/simulator/server.ts';
