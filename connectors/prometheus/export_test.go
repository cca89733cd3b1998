package prometheus

import "hots/connectors"

// SetBeforeQuery runs f before every query attempt of conn (tests stop
// and restart the server from it).
func SetBeforeQuery(conn connectors.Connector, f func(query string)) {
	switch c := conn.(type) {
	case historyConnector:
		c.r.c.beforeQuery = f
	case *Connector:
		c.r.c.beforeQuery = f
	}
}
