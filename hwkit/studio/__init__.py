"""The handwriting studio (``hwkit serve``): a local web app to write text in any hand and record your own.

``service.Studio`` is the library (models, hands, writing jobs, recordings,
styles by id); ``app.create_app`` is its HTTP face (Starlette, served by
uvicorn); ``recording`` files browser-recorded lines as IAM-OnDB and turns them
into primes; ``static/`` holds the two pages.
"""
