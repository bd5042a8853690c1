/**
 * The answer to a request Node could not read whole: not arrived within `HTTP_REQUEST_TIMEOUT_MS` (or its headers
 * within `HTTP_HEADERS_TIMEOUT_MS`), headers too large, or not HTTP. Node's own answer is a bare status line with no
 * body (found in review, 2026-12-08: an empty 408); this one has the error shape every other answer has, and closes
 * the connection, as Node's does. The server's `clientError` listener (wiring/http.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';

interface Answer {
  status: number;
  reason: string;
  code: string;
  message: string;
}

const BY_NODE_CODE: Record<string, Answer> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    reason: 'Request Timeout',
    code: 'REQUEST_TIMEOUT',
    message: 'The request did not arrive whole in time (HTTP_REQUEST_TIMEOUT_MS, its headers HTTP_HEADERS_TIMEOUT_MS); the connection is closed.',
  },
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', code: 'HEADERS_TOO_LARGE', message: "The request's headers are too large." },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, reason: 'Payload Too Large', code: 'PAYLOAD_TOO_LARGE', message: "The request's chunk extensions are too large." },
};
const MALFORMED: Answer = { status: 400, reason: 'Bad Request', code: 'BAD_REQUEST', message: 'The request is not valid HTTP/1.1.' };

/** Writes the answer (unless the client is gone or an answer has begun) and closes the connection. */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  // An answer already begun on this connection cannot be followed by another (Node's own rule).
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (error.code !== 'ECONNRESET' && socket.writable && !inFlight?.headersSent) {
    const answer = BY_NODE_CODE[error.code ?? ''] ?? MALFORMED;
    const body = JSON.stringify({ error: { code: answer.code, message: answer.message } });
    socket.write(
      `HTTP/1.1 ${answer.status} ${answer.reason}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${randomUUID()}\r\n` +
        'Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n' +
        body,
    );
  }
  socket.destroy(error);
}
