"""The exporter's window on the cluster: credentials, a REST client, discovery and a
client-go-grade reflector (client-go `tools/cache/reflector.go`).

    creds = load_credentials(kubeconfig)                    # credentials.py (the only user of `kubernetes`)
    async with KubeClient(creds) as client:                 # client.py: one aiohttp session
        ref = await Discovery(client).resolve("v1", "Pod")  # discovery.py
        reflector = Reflector(client, ref, shard_filter=f)  # reflector.py
        async with contextlib.aclosing(reflector.events()) as events:
            async for ev in events: ...                     # ADDED/MODIFIED/DELETED/SYNCED

This package may import aiohttp and orjson; only `credentials` imports `kubernetes`;
never redis or hashring.
"""
