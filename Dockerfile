FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY domain ./domain
COPY projections ./projections
COPY adapters ./adapters
COPY http ./http
COPY migrations ./migrations
COPY main.ts tsconfig.json ./
USER node
EXPOSE 3000
CMD ["node", "--import=tsx", "main.ts"]
