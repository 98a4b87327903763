<?xml version="1.0" encoding="UTF-8"?>
<!--
  How a browser shows syndicate's RSS and Atom feeds to a person who opens one: the feed's
  title, a sentence on what a feed is, and its items. Feed readers ignore this file.

  XSLT 1.0 only (what browsers implement); no scripts (the feeds' Content-Security-Policy
  allows none) and no external resources. Values are copied as text, so they are escaped.
-->
<xsl:stylesheet version="1.0"
  xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:atom="http://www.w3.org/2005/Atom"
  exclude-result-prefixes="atom">
<xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

<xsl:template match="/">
  <xsl:variable name="title" select="normalize-space(rss/channel/title | atom:feed/atom:title)"/>
  <xsl:variable name="kind">
    <xsl:choose>
      <xsl:when test="rss">RSS</xsl:when>
      <xsl:otherwise>Atom</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>
  <xsl:variable name="home" select="rss/channel/link | atom:feed/atom:link[@rel='alternate']/@href"/>
  <html>
    <xsl:attribute name="lang">
      <xsl:value-of select="rss/channel/language | atom:feed/@xml:lang"/>
    </xsl:attribute>
  <head>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1"/>
    <meta name="color-scheme" content="light dark"/>
    <title><xsl:value-of select="$title"/> (<xsl:value-of select="$kind"/> feed)</title>
    <style>
:root { color-scheme: light dark; --text: #1f2328; --muted: #59636e; --background: #ffffff;
  --rule: #d1d9e0; --link: #0b5cad; --note: #f4f5f7; }
@media (prefers-color-scheme: dark) {
  :root { --text: #e6edf3; --muted: #9198a1; --background: #121417; --rule: #30363d;
    --link: #6cb6ff; --note: #1c2128; }
}
body { margin: 0; background: var(--background); color: var(--text);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 1.0625rem; line-height: 1.6; }
.wrap { max-width: 42rem; margin: 0 auto; padding: 1.5rem 1rem 2rem; }
a { color: var(--link); }
h1 { font-size: 1.75rem; line-height: 1.25; margin: 0 0 0.5rem; overflow-wrap: anywhere; }
.about { background: var(--note); border-left: 4px solid var(--link); padding: 0.75rem 1rem;
  margin: 1rem 0 1.5rem; }
.about p { margin: 0.25rem 0; }
.item { padding: 1rem 0; border-top: 1px solid var(--rule); }
.item h2 { font-size: 1.2rem; line-height: 1.3; margin: 0 0 0.25rem; overflow-wrap: anywhere; }
.meta, .description { color: var(--muted); margin: 0; }
    </style>
  </head>
  <body>
    <main class="wrap">
      <h1><xsl:value-of select="$title"/></h1>
      <p class="description">
        <xsl:value-of select="rss/channel/description | atom:feed/atom:subtitle"/>
      </p>
      <div class="about">
        <p><strong>This is a feed</strong> (<xsl:value-of select="$kind"/>): a list of the
        latest posts that a feed reader checks for you. To follow <xsl:value-of select="$title"/>,
        copy this page's address into your feed reader.</p>
        <xsl:if test="$home">
          <p><a href="{$home}">Visit the website</a></p>
        </xsl:if>
      </div>
      <xsl:apply-templates select="rss/channel/item | atom:feed/atom:entry"/>
    </main>
  </body>
  </html>
</xsl:template>

<xsl:template match="item | atom:entry">
  <xsl:variable name="link" select="link | atom:link[not(@rel) or @rel='alternate']/@href"/>
  <article class="item">
    <h2>
      <xsl:choose>
        <xsl:when test="$link"><a href="{$link}"><xsl:value-of select="title | atom:title"/></a></xsl:when>
        <xsl:otherwise><xsl:value-of select="title | atom:title"/></xsl:otherwise>
      </xsl:choose>
    </h2>
    <p class="meta"><xsl:value-of select="pubDate | atom:published"/></p>
  </article>
</xsl:template>
</xsl:stylesheet>
