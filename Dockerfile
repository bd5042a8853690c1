# Two stages: the build compiles TypeScript to JavaScript (npm run build → dist/, with source maps); the image that
# runs has only production dependencies (no tsx, no TypeScript) and the compiled output with migrations/ and the
# admin console's static files beside it.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json main.ts ./
COPY domain ./domain
COPY projections ./projections
COPY adapters ./adapters
COPY http ./http
COPY wiring ./wiring
COPY cli ./cli
COPY migrations ./migrations
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
CMD ["node", "--max-semi-space-size=32", "--enable-source-maps", "dist/main.js"]
