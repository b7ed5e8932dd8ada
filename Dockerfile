FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY authsvc ./authsvc
COPY migrations ./migrations
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system --uid 10001 authsvc
USER authsvc
ENV AUTHSVC_HOST=0.0.0.0 AUTHSVC_PORT=8000 AUTHSVC_DATA_DIR=/data
EXPOSE 8000
CMD ["authsvc", "serve", "--host", "0.0.0.0", "--port", "8000"]
