/** Structured logging for the control plane (winston, JSON lines on stderr). Never on the proxy hot path. */
import winston from 'winston';

const level = process.env.ISTHMUS_LOG_LEVEL ?? 'info';

export function createLogger(component: string): winston.Logger {
  return winston.createLogger({
    level,
    defaultMeta: { component },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  });
}
