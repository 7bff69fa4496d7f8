"""Music sources: what the user typed -> a track (Spotify) -> a 30 s section of its audio.

    parse_query(text)                      bot.sources.query
    SpotifyResolver(...).resolve(query)    bot.sources.spotify
    AudioFetcher(...).find(track)          bot.sources.audio   (the search's hit, nothing downloaded)
    AudioFetcher(...).fetch(track or hit)  bot.sources.audio   (async context manager)
    URLGuard(allowed_hosts).check(url)     bot.sources.urlguard
    public_connections_only(policy)        bot.sources.connectguard  (a download worker, for a user's link)
    ShortLinkResolver(...).track_id(url)   bot.sources.shortlink  (spotify.link -> a track id)
    cache_key(track), file_cache_key(p)    bot.sources.keys

Submodules are imported directly (no re-exports) so that importing the models does not pull in
yt-dlp or spotipy.
"""
