"""Git sources: repositories holding hooks in the export format, deployed on push.

``repository.py`` says which repository URLs are allowed; ``sources.py`` stores
sources (webhook secret and credentials sealed) and queues their deployments;
``webhooks.py`` checks a push's signature and reads it; ``git.py`` fetches a
commit with the git CLI and reads its tree under caps; ``deployer.py``
validates a commit's hooks and applies them in one transaction or not at all;
``worker.py`` runs queued deployments, each once across every server process.
"""
