package canary

import "strings"

// Word lists of the same kinds as the lab platform's profiles, so a canary
// reads like any other profile.
var (
	firstNames = strings.Fields(`Lena Noah Emma Liam Olivia Mateo Sofia Lucas Mia Elias Hanna Leon Clara Felix Ava
	Oscar Ella Hugo Alice Arthur Chloe Louis Nora Adam Ines Jonas Lea Samuel Zoe Theo Maya Daniel Julia Gabriel
	Amelia David Laura Victor Emily Anton Paula Jakob Rosa Oliver Marta Ben Sara Tom Nina Max Lina Paul Eva Finn
	Ida Jan Vera Erik Greta Milan Aria Ivan Elena Omar Layla Ali Yara Ravi Priya Arjun Anika Kenji Yuki Haruto
	Sakura Wei Mei Chen Lin Diego Lucia Carlos Valentina Pablo Camila Jorge Isabel Marco Giulia Luca Chiara
	Matteo Francesca Pierre Camille Jules Manon Lars Freya Nils Astrid Karl Ingrid Tomas Petra Mateus Beatriz
	Rafael Larissa Joao Ana Kofi Amara Tariq Zainab Samir Leila Hamza Noor Aiden Grace Ethan Harper Mason Lily
	Logan Ruby Caleb Stella Isaac Hazel Owen Violet Ezra Aurora Jack Willow Henry Ivy Charlie Iris Simon Alma`)
	lastNames = strings.Fields(`Morgan Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez
	Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
	Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green
	Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Muller Schmidt Schneider Fischer Weber Meyer
	Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf Bernard Dubois Durand Lefebvre Moreau Laurent Simon
	Michel Leroy Roux Fontaine Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Silva
	Santos Oliveira Souza Costa Pereira Almeida Ferreira Carvalho Gomes Sato Suzuki Takahashi Tanaka Watanabe`)

	personalCategories = []string{"Personal blog", "Photographer", "Traveler", "Artist", "Musician",
		"Athlete", "Writer", "Student", "Gamer", "Chef", "Designer", "Gardener", "Parent", "Hiker"}
	businessCategories = []string{"Bakery", "Restaurant", "Coffee shop", "Clothing store",
		"Photography studio", "Fitness center", "Bookstore", "Florist", "Hair salon", "Brewery"}

	bioPhrases = strings.Split(`Chasing light and good coffee.|Weekend hiker, weekday dreamer.|`+
		`Sharing small moments from a big world.|Film photography on the side.|Plants everywhere.|`+
		`Learning to cook one recipe at a time.|Dog person, cat tolerant.|Sunsets are my favourite subject.|`+
		`Runner, reader, tea drinker.|Always planning the next trip.|Here for the architecture.|`+
		`Grew up by the sea, live in the city now.|Posting whatever makes me smile.|`+
		`Cycling through the seasons.|Street photography and quiet corners.|`+
		`Museums, markets and long walks.|Mountains in summer, books in winter.|`+
		`Making things with my hands.|Snapshots from a slow life.|Amateur astronomer.|`+
		`Family, friends and food, in that order.|Opinions are my own.|All photos are my own.`, "|")

	postPhrases = strings.Split(`Golden hour never gets old.|Found this little place around the corner.|`+
		`Throwback to last summer.|New week, new plans.|Rainy day mood.|Market finds of the day.|`+
		`Long walk, short caption.|Sunday mornings like this one.|Trying a new lens today.|`+
		`A quiet corner of the city.|Fresh out of the oven.|Caught the last light.`, "|")

	hashtags = []string{"photography", "travel", "food", "nature", "citylife", "sunset", "art", "coffee"}

	// cities by the region of a canary's phone.
	regionCities = map[string][]string{
		"US": {"New York", "Los Angeles", "Chicago", "Houston", "San Francisco", "Boston", "Seattle", "Austin"},
		"GB": {"London", "Manchester", "Bristol", "Leeds", "Glasgow", "Edinburgh"},
		"DE": {"Berlin", "Hamburg", "Munich", "Cologne", "Leipzig", "Frankfurt"},
		"FR": {"Paris", "Lyon", "Marseille", "Bordeaux", "Lille", "Nantes"},
		"ES": {"Madrid", "Barcelona", "Valencia", "Seville", "Bilbao"},
		"IN": {"Mumbai", "Delhi", "Bengaluru", "Chennai", "Pune"},
		"BR": {"Sao Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba"},
		"JP": {"Tokyo", "Osaka", "Kyoto", "Sapporo"},
		"CA": {"Toronto", "Vancouver", "Montreal", "Calgary"},
		"AU": {"Sydney", "Melbourne", "Brisbane", "Perth"},
	}
	otherCities = []string{"London", "Paris", "Berlin", "New York", "Madrid"}

	firstLower = lowerAll(firstNames)
	lastLower  = lowerAll(lastNames)
)

func lowerAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToLower(v)
	}
	return out
}
