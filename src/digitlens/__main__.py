from .cli import app

if __name__ == "__main__":  # not when a worker process re-imports it
    app()
