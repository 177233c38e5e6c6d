package platform

import "strings"

// Word lists the profiles are built from. Names hold ASCII letters only
// (no digits, '_' or '.'), which the uniqueness arguments in gen.go rely on.
var (
	firstNames = strings.Fields(`Lena Noah Emma Liam Olivia Mateo Sofia Lucas Mia Elias Hanna Leon Clara Felix Ava
	Oscar Ella Hugo Alice Arthur Chloe Louis Nora Adam Ines Jonas Lea Samuel Zoe Theo Maya Daniel Julia Gabriel
	Amelia David Laura Victor Emily Anton Paula Jakob Rosa Oliver Marta Ben Sara Tom Nina Max Lina Paul Eva Finn
	Ida Jan Vera Erik Greta Milan Aria Ivan Elena Omar Layla Ali Yara Ravi Priya Arjun Anika Kenji Yuki Haruto
	Sakura Wei Mei Chen Lin Diego Lucia Carlos Valentina Pablo Camila Jorge Isabel Marco Giulia Luca Chiara
	Matteo Francesca Pierre Camille Jules Manon Lars Freya Nils Astrid Karl Ingrid Tomas Petra Mateus Beatriz
	Rafael Larissa Joao Ana Kofi Amara Tariq Zainab Samir Leila Hamza Noor Aiden Grace Ethan Harper Mason Lily
	Logan Ruby Caleb Stella Isaac Hazel Owen Violet Ezra Aurora Jack Willow Henry Ivy Charlie Iris Simon Alma
	Rohan Kavya Aditya Diya Sven Maja Emil Selma Aron Liv Tobias Frida Jonah Esther Levi Naomi Asher Miriam`)
	lastNames = strings.Fields(`Morgan Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez
	Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
	Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green
	Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Muller Schmidt Schneider Fischer Weber Meyer
	Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf Bernard Dubois Durand Lefebvre Moreau Laurent Simon
	Michel Leroy Roux Fontaine Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Silva
	Santos Oliveira Souza Costa Pereira Almeida Ferreira Carvalho Gomes Sato Suzuki Takahashi Tanaka Watanabe
	Ito Yamamoto Nakamura Kobayashi Kato Sharma Patel Singh Kumar Gupta Reddy Iyer Mehta Nair Joshi Wang Zhang
	Liu Yang Huang Zhao Wu Zhou Xu Sun Jensen Nielsen Hansen Pedersen Andersen Larsen Johansson Lindberg
	Eriksson Berg Novak Horvat Kowalski Nowak Wisniewski Petrov Ivanova Popescu Murphy Kelly Byrne Walsh
	Obrien Ryan Okafor Mensah Boateng Haddad Khalil Nasser Mansour Fraser Campos Vega Castro Ortiz Morales
	Reyes Cruz Navarro Romero Alvarez Molina Delgado Herrera Medina Aguilar Ruiz Vargas Mendoza Guerrero`)
	firstLower = lowerAll(firstNames)
	lastLower  = lowerAll(lastNames)

	personalCategories = []string{"Personal blog", "Photographer", "Traveler", "Artist", "Musician",
		"Athlete", "Writer", "Student", "Gamer", "Chef", "Designer", "Gardener", "Parent", "Hiker",
		"Film lover", "Coffee enthusiast", "Dancer", "Scientist"}
	businessCategories = []string{"Bakery", "Restaurant", "Coffee shop", "Clothing store",
		"Photography studio", "Fitness center", "Bookstore", "Travel agency", "Florist", "Hair salon",
		"Record label", "Design agency", "Brewery", "Yoga studio", "Bicycle shop", "Art gallery"}

	bioPhrases = strings.Split(`Chasing light and good coffee.|Weekend hiker, weekday dreamer.|`+
		`Sharing small moments from a big world.|Film photography on the side.|Plants everywhere.|`+
		`Learning to cook one recipe at a time.|Dog person, cat tolerant.|Sunsets are my favourite subject.|`+
		`Trying to see every coastline at least once.|Runner, reader, tea drinker.|`+
		`Collecting old cameras and older stories.|Always planning the next trip.|`+
		`Mornings are for sketching, evenings for jazz.|Here for the architecture.|`+
		`Grew up by the sea, live in the city now.|Posting whatever makes me smile.|`+
		`Bread baker and sourdough apologist.|Cycling through the seasons.|`+
		`Street photography and quiet corners.|Vinyl records and rainy afternoons.|`+
		`Museums, markets and long walks.|Writing short stories about ordinary people.|`+
		`Exploring one neighbourhood every month.|Mountains in summer, books in winter.|`+
		`Making things with my hands.|Snapshots from a slow life.|Amateur astronomer.|`+
		`Learning a new language every year, failing gracefully.|Family, friends and food, in that order.|`+
		`Open to collaborations and good conversations.|Proudly local, curious about everywhere else.|`+
		`All photos are my own.|Still looking for the perfect croissant.|`+
		`Documenting the city one doorway at a time.|Believer in second breakfasts.|`+
		`Painting with light since forever.|Small business, big heart.|Opinions are my own.`, "|")

	postPhrases = strings.Split(`Golden hour never gets old.|Found this little place around the corner.|`+
		`Throwback to last summer.|New week, new plans.|Can't believe this view was real.|`+
		`First try at this recipe, not bad at all.|Rainy day mood.|Market finds of the day.|`+
		`Long walk, short caption.|This one is for the archive.|Back home after a wonderful trip.|`+
		`Sunday mornings like this one.|Trying a new lens today.|Some colours from the weekend.|`+
		`Details matter.|A quiet corner of the city.|Couldn't stop smiling all day.|`+
		`Thank you all for the kind words!|Big news coming soon.|Studio day.|`+
		`The best things are the simple ones.|Fresh out of the oven.|Caught the last light.`, "|")

	hashtags = []string{"photography", "travel", "food", "nature", "citylife", "sunset", "art",
		"coffee", "weekend", "friends", "streetphotography", "homemade", "design", "fitness", "music"}
)

// A phone block: "+" + prefix + six digits is a valid number of the country
// for every six digits below 524288 (checked exhaustively with
// libphonenumber; see TestPhoneBlocksValid). No prefix is a prefix of
// another, so numbers from different blocks differ.
type phoneBlock struct {
	prefix  string
	country string
}

// phoneSlots: 32 blocks, so a country's share of profiles is its share of
// slots (US 8/32, GB 4/32, ...).
var phoneSlots = [32]phoneBlock{
	{"12125", "US"}, {"12126", "US"}, {"13105", "US"}, {"13106", "US"},
	{"14155", "US"}, {"16175", "US"}, {"17135", "US"}, {"13125", "US"},
	{"447400", "GB"}, {"447500", "GB"}, {"447900", "GB"}, {"447800", "GB"},
	{"4915123", "DE"}, {"4917612", "DE"}, {"4916012", "DE"},
	{"33612", "FR"}, {"33613", "FR"}, {"33614", "FR"},
	{"919812", "IN"}, {"919876", "IN"}, {"919845", "IN"},
	{"5511987", "BR"}, {"5521987", "BR"}, {"5531987", "BR"},
	{"819012", "JP"}, {"819087", "JP"},
	{"14165", "CA"}, {"16045", "CA"},
	{"61412", "AU"}, {"61438", "AU"},
	{"34612", "ES"}, {"34655", "ES"},
}

var countryCities = map[string][]string{
	"US": {"New York", "Los Angeles", "Chicago", "Houston", "San Francisco", "Boston", "Seattle", "Austin", "Denver", "Miami"},
	"GB": {"London", "Manchester", "Bristol", "Leeds", "Glasgow", "Edinburgh", "Liverpool", "Brighton"},
	"DE": {"Berlin", "Hamburg", "Munich", "Cologne", "Leipzig", "Frankfurt", "Dresden"},
	"FR": {"Paris", "Lyon", "Marseille", "Bordeaux", "Lille", "Nantes", "Toulouse"},
	"IN": {"Mumbai", "Delhi", "Bengaluru", "Chennai", "Pune", "Hyderabad", "Kolkata"},
	"BR": {"Sao Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Recife", "Porto Alegre"},
	"JP": {"Tokyo", "Osaka", "Kyoto", "Sapporo", "Fukuoka", "Yokohama"},
	"CA": {"Toronto", "Vancouver", "Montreal", "Calgary", "Ottawa"},
	"AU": {"Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide"},
	"ES": {"Madrid", "Barcelona", "Valencia", "Seville", "Bilbao", "Malaga"},
}

func lowerAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToLower(v)
	}
	return out
}
