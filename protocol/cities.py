"""Real cities with their coordinates and population: the grid study's sites and jobs, and the
places a renter may name as an origin (`dcloud job init --origin Munich`)."""

from __future__ import annotations

from dataclasses import dataclass

# name, lat, lon, metropolitan population (millions, approximate)
CITIES_TEXT = """
Oslo,59.91,10.75,1.1;Bergen,60.39,5.32,0.4;Trondheim,63.43,10.39,0.2;Stockholm,59.33,18.07,1.6
Paris,48.86,2.35,11.1;Lyon,45.76,4.84,2.3;Marseille,43.30,5.37,1.9;Lille,50.63,3.06,1.2
Nantes,47.22,-1.55,1.0;Brussels,50.85,4.35,2.1;Frankfurt,50.11,8.68,2.3;Berlin,52.52,13.40,4.5
Munich,48.14,11.58,2.9;Hamburg,53.55,9.99,3.2;Cologne,50.94,6.96,3.5;Stuttgart,48.78,9.18,2.7
Zurich,47.37,8.54,1.4;Prague,50.08,14.44,2.7;Madrid,40.42,-3.70,6.7;Barcelona,41.39,2.17,5.6
Valencia,39.47,-0.38,1.6;Seville,37.39,-5.98,1.5;Bilbao,43.26,-2.93,1.0;Lisbon,38.72,-9.14,2.9
Porto,41.15,-8.61,1.7;Warsaw,52.23,21.01,3.1;Krakow,50.06,19.94,1.5;Wroclaw,51.11,17.04,1.2
Gdansk,54.35,18.65,1.1;Budapest,47.50,19.04,3.0;Vienna,48.21,16.37,2.9;London,51.51,-0.13,14.3
Manchester,53.48,-2.24,2.8;Birmingham,52.49,-1.89,2.9;Glasgow,55.86,-4.25,1.8
Leeds,53.80,-1.55,1.9;Dublin,53.35,-6.26,2.0;San Francisco,37.77,-122.42,4.7
Los Angeles,34.05,-118.24,13.0;San Diego,32.72,-117.16,3.3;Sacramento,38.58,-121.49,2.4
Seattle,47.61,-122.33,4.0;Portland,45.52,-122.68,2.5;Phoenix,33.45,-112.07,4.9
Las Vegas,36.17,-115.14,2.3;Dallas,32.78,-96.80,7.6;Houston,29.76,-95.37,7.1
Austin,30.27,-97.74,2.4;San Antonio,29.42,-98.49,2.6;Denver,39.74,-104.99,3.0
Atlanta,33.75,-84.39,6.2;Mexico City,19.43,-99.13,22.0;Monterrey,25.69,-100.32,5.3
New York,40.71,-74.01,19.5;Boston,42.36,-71.06,4.9;Philadelphia,39.95,-75.17,6.2
Washington,38.91,-77.04,6.3;Chicago,41.88,-87.63,9.4;Detroit,42.33,-83.05,4.3
Miami,25.76,-80.19,6.1;Montreal,45.50,-73.57,4.3;Quebec City,46.81,-71.21,0.8
Ottawa,45.42,-75.70,1.4;Toronto,43.65,-79.38,6.2;Sao Paulo,-23.55,-46.63,22.0
Rio de Janeiro,-22.91,-43.17,13.5;Belo Horizonte,-19.92,-43.94,6.0;Curitiba,-25.43,-49.27,3.7
Porto Alegre,-30.03,-51.23,4.4;Brasilia,-15.79,-47.88,4.8;Santiago,-33.45,-70.67,7.0
Valparaiso,-33.05,-71.62,1.0;Buenos Aires,-34.60,-58.38,15.0;Lima,-12.05,-77.04,11.0
Johannesburg,-26.20,28.05,10.0;Pretoria,-25.75,28.19,2.5;Durban,-29.86,31.02,3.5
Cape Town,-33.92,18.42,4.7;Nairobi,-1.29,36.82,5.0;Mumbai,19.08,72.88,21.0
Pune,18.52,73.86,7.0;Ahmedabad,23.02,72.57,8.0;Bangalore,12.97,77.59,13.0
Delhi,28.61,77.21,32.0;Hyderabad,17.39,78.49,10.0;Chennai,13.08,80.27,11.0
Kolkata,22.57,88.36,15.0;Dubai,25.20,55.27,3.5;Singapore,1.35,103.82,6.0
Kuala Lumpur,3.14,101.69,8.0;Jakarta,-6.21,106.85,34.0;Bangkok,13.76,100.50,11.0
Ho Chi Minh City,10.82,106.63,9.0;Manila,14.60,120.98,14.0;Hong Kong,22.32,114.17,7.5
Tokyo,35.68,139.69,37.0;Osaka,34.69,135.50,19.0;Nagoya,35.18,136.91,9.0
Fukuoka,33.59,130.40,5.5;Sapporo,43.06,141.35,2.6;Seoul,37.57,126.98,25.0
Shanghai,31.23,121.47,27.0;Beijing,39.90,116.41,21.0;Taipei,25.03,121.57,7.0
Sydney,-33.87,151.21,5.3;Melbourne,-37.81,144.96,5.1;Brisbane,-27.47,153.03,2.6
Adelaide,-34.93,138.60,1.4;Perth,-31.95,115.86,2.1;Auckland,-36.85,174.76,1.7
Wellington,-41.29,174.78,0.4;Christchurch,-43.53,172.64,0.4
"""


@dataclass(frozen=True)
class City:
    name: str
    lat: float
    lon: float
    population_m: float


def parse_cities(text: str) -> tuple[City, ...]:
    """Parse ``name,lat,lon,population`` records separated by ``;`` or newlines."""
    out = []
    for record in text.replace("\n", ";").split(";"):
        if record.strip():
            name, lat, lon, pop = record.split(",")
            out.append(City(name.strip(), float(lat), float(lon), float(pop)))
    return tuple(out)


CITIES = parse_cities(CITIES_TEXT)


def find_city(name: str) -> City | None:
    """The bundled city called `name` (case and surrounding spaces ignored), if any."""
    wanted = " ".join(name.split()).casefold()
    return next((c for c in CITIES if c.name.casefold() == wanted), None)
