"""LangChain's AzureChatOpenAI through ballast: an app written for Azure OpenAI, unchanged but for its
endpoint.

ballast accepts Azure-shaped requests (`/openai/deployments/{deployment}/chat/completions?api-version=…`
with an `api-key` header), and the deployment name is the model name it routes. The upstream behind it
may be Azure, OpenAI or a local server.

    make run                                        # ballast on 127.0.0.1:4000, with the simulated model "sim"
    .venv/bin/python examples/python/azure_langchain.py
"""

import os

from langchain_openai import AzureChatOpenAI

# The Azure endpoint is ballast's address without /v1.
BASE_URL = os.environ.get("BALLAST_BASE_URL", "http://127.0.0.1:4000/v1")
ENDPOINT = BASE_URL.removesuffix("/").removesuffix("/v1")

llm = AzureChatOpenAI(
    azure_endpoint=ENDPOINT,  # was https://RESOURCE.openai.azure.com
    azure_deployment="sim",   # the model ballast routes
    api_version="2024-10-21",
    api_key="unused",         # ballast holds the upstream's real key
    timeout=30,
)

reply = llm.invoke("Name three uses of a lighthouse.")
print(f"deployment {reply.response_metadata.get('model_name')}: {reply.content}")
print(f"tokens: {reply.usage_metadata['input_tokens']} in, {reply.usage_metadata['output_tokens']} out")
