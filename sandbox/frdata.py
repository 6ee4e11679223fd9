"""Static French reference data for the sandbox generator: names, cities, NAF codes, legal forms.

Small hand-picked lists (real cities with their real main postcode, real NAF rev.2 codes and INSEE labels,
real INSEE legal-category codes) so generated companies look plausible and pass registry-style checks.
"""
from __future__ import annotations

FIRST_NAMES_F = [
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Emma", "Sarah", "Juliette", "Louise", "Clémence", "Océane",
    "Anaïs", "Margaux", "Élodie", "Hélène", "Nathalie", "Isabelle", "Sophie", "Céline", "Sandrine", "Valérie",
    "Françoise", "Aurélie", "Mélanie", "Émilie", "Zoé", "Maëlle", "Noémie", "Agnès", "Béatrice", "Marie-Claire",
    "Anne-Sophie", "Laëtitia", "Gaëlle", "Solène", "Coralie", "Pauline", "Charlotte", "Virginie", "Delphine",
]
FIRST_NAMES_M = [
    "Thomas", "Nicolas", "Julien", "Maxime", "Alexandre", "Antoine", "Kévin", "Romain", "Guillaume", "Hugo",
    "Lucas", "Théo", "Mathieu", "Sébastien", "Jérôme", "Frédéric", "Stéphane", "Laurent", "Olivier", "Éric",
    "François", "Benoît", "Cédric", "Grégoire", "Loïc", "Gaël", "Jean-Pierre", "Jean-Baptiste", "Pierre-Yves",
    "Hervé", "Rémi", "Valentin", "Baptiste", "Clément", "Arnaud", "Damien", "Yannick", "Noël", "Joël", "Raphaël",
]
LAST_NAMES = [
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
    "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel",
    "Girard", "André", "Lefebvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez", "Legrand",
    "Garnier", "Faure", "Rousseau", "Blanc", "Guérin", "Muller", "Henry", "Roussel", "Nicolas", "Perrin",
    "Morin", "Mathieu", "Clément", "Gauthier", "Dumont", "Lopez", "Fontaine", "Chevalier", "Robin", "Masson",
    "Sanchez", "Gérard", "Nguyen", "Boyer", "Denis", "Lemaire", "Duval", "Joly", "Gautier", "Roger", "Roche",
    "Roy", "Noël", "Meyer", "Lucas", "Meunier", "Jean", "Pérez", "Marchand", "Dufour", "Blanchard", "Brun",
    "Barbier", "Hoarau", "Caron", "Giraud", "Arnaud", "Renaud", "Schmitt", "Colin", "Vidal", "Bourgeois",
    "Le Gall", "Le Goff", "Le Roux", "Le Bihan", "Le Floch", "de La Fontaine", "de Villiers", "de Saint-Exupéry",
    "Du Pont", "Da Silva", "d'Aubigné", "Lécuyer", "Prévost", "Béranger", "Château", "Mélenchon", "Benoît",
]

# (city, postcode, department code) – real communes and a real postcode of each.
CITIES = [
    ("Paris", "75008", "75"), ("Paris", "75011", "75"), ("Paris", "75015", "75"), ("Paris", "75002", "75"),
    ("Lyon", "69003", "69"), ("Lyon", "69007", "69"), ("Marseille", "13008", "13"), ("Toulouse", "31000", "31"),
    ("Nice", "06000", "06"), ("Nantes", "44000", "44"), ("Strasbourg", "67000", "67"), ("Montpellier", "34000", "34"),
    ("Bordeaux", "33000", "33"), ("Lille", "59000", "59"), ("Rennes", "35000", "35"), ("Reims", "51100", "51"),
    ("Saint-Étienne", "42000", "42"), ("Le Havre", "76600", "76"), ("Toulon", "83000", "83"),
    ("Grenoble", "38000", "38"), ("Dijon", "21000", "21"), ("Angers", "49000", "49"), ("Nîmes", "30000", "30"),
    ("Villeurbanne", "69100", "69"), ("Clermont-Ferrand", "63000", "63"), ("Le Mans", "72000", "72"),
    ("Aix-en-Provence", "13100", "13"), ("Brest", "29200", "29"), ("Tours", "37000", "37"), ("Amiens", "80000", "80"),
    ("Limoges", "87000", "87"), ("Annecy", "74000", "74"), ("Perpignan", "66000", "66"),
    ("Boulogne-Billancourt", "92100", "92"), ("Metz", "57000", "57"), ("Besançon", "25000", "25"),
    ("Orléans", "45000", "45"), ("Rouen", "76000", "76"), ("Mulhouse", "68100", "68"), ("Caen", "14000", "14"),
    ("Nancy", "54000", "54"), ("Argenteuil", "95100", "95"), ("Montreuil", "93100", "93"),
    ("Roubaix", "59100", "59"), ("Tourcoing", "59200", "59"), ("Nanterre", "92000", "92"), ("Vitry-sur-Seine", "94400", "94"),
    ("Créteil", "94000", "94"), ("Avignon", "84000", "84"), ("Poitiers", "86000", "86"), ("Pau", "64000", "64"),
    ("La Rochelle", "17000", "17"), ("Levallois-Perret", "92300", "92"), ("Issy-les-Moulineaux", "92130", "92"),
    ("Saint-Denis", "93200", "93"), ("Courbevoie", "92400", "92"), ("Rueil-Malmaison", "92500", "92"),
    ("Chambéry", "73000", "73"), ("Valence", "26000", "26"), ("Quimper", "29000", "29"), ("Vannes", "56000", "56"),
    ("Lorient", "56100", "56"), ("Bayonne", "64100", "64"), ("Colmar", "68000", "68"), ("Troyes", "10000", "10"),
    ("Niort", "79000", "79"), ("Cholet", "49300", "49"), ("Saint-Malo", "35400", "35"), ("Évry-Courcouronnes", "91000", "91"),
    ("Sophia Antipolis", "06560", "06"), ("Labège", "31670", "31"), ("Mérignac", "33700", "33"),
]

STREET_TYPES = ["rue", "avenue", "boulevard", "place", "allée", "impasse", "quai", "chemin"]
STREET_NAMES = [
    "de la République", "Victor Hugo", "Jean Jaurès", "du Général de Gaulle", "Pasteur", "de la Gare",
    "des Lilas", "Émile Zola", "Gambetta", "du Maréchal Foch", "de Verdun", "Jules Ferry", "de la Liberté",
    "du Commerce", "des Écoles", "Saint-Honoré", "de l'Industrie", "Voltaire", "Carnot", "de Paris", "Nationale",
    "des Entrepreneurs", "du Moulin", "de l'Église", "Montesquieu", "Denis Papin", "Ampère", "Blaise Pascal",
]

# NAF rev.2 code -> INSEE label, and the HubSpot `industry` enum value closest to it.
NAF = [
    ("62.01Z", "Programmation informatique", "COMPUTER_SOFTWARE"),
    ("62.02A", "Conseil en systèmes et logiciels informatiques", "INFORMATION_TECHNOLOGY_AND_SERVICES"),
    ("62.03Z", "Gestion d'installations informatiques", "INFORMATION_TECHNOLOGY_AND_SERVICES"),
    ("63.11Z", "Traitement de données, hébergement et activités connexes", "INTERNET"),
    ("58.29C", "Édition de logiciels applicatifs", "COMPUTER_SOFTWARE"),
    ("70.22Z", "Conseil pour les affaires et autres conseils de gestion", "MANAGEMENT_CONSULTING"),
    ("69.20Z", "Activités comptables", "ACCOUNTING"),
    ("69.10Z", "Activités juridiques", "LAW_PRACTICE"),
    ("71.12B", "Ingénierie, études techniques", "MECHANICAL_OR_INDUSTRIAL_ENGINEERING"),
    ("73.11Z", "Activités des agences de publicité", "MARKETING_AND_ADVERTISING"),
    ("46.69B", "Commerce de gros (commerce interentreprises) de fournitures et équipements industriels divers", "WHOLESALE"),
    ("46.51Z", "Commerce de gros (commerce interentreprises) d'ordinateurs, d'équipements informatiques périphériques et de logiciels", "WHOLESALE"),
    ("47.91B", "Vente à distance sur catalogue spécialisé", "RETAIL"),
    ("25.62B", "Mécanique industrielle", "MACHINERY"),
    ("28.29B", "Fabrication d'autres machines d'usage général", "MACHINERY"),
    ("10.71C", "Boulangerie et boulangerie-pâtisserie", "FOOD_PRODUCTION"),
    ("10.13A", "Préparation industrielle de produits à base de viande", "FOOD_PRODUCTION"),
    ("41.20A", "Construction de maisons individuelles", "CONSTRUCTION"),
    ("43.21A", "Travaux d'installation électrique dans tous locaux", "CONSTRUCTION"),
    ("43.22A", "Travaux d'installation d'eau et de gaz en tous locaux", "CONSTRUCTION"),
    ("49.41A", "Transports routiers de fret interurbains", "TRANSPORTATION_TRUCKING_RAILROAD"),
    ("52.29A", "Messagerie, fret express", "LOGISTICS_AND_SUPPLY_CHAIN"),
    ("55.10Z", "Hôtels et hébergement similaire", "HOSPITALITY"),
    ("56.10A", "Restauration traditionnelle", "RESTAURANTS"),
    ("68.20B", "Location de terrains et d'autres biens immobiliers", "REAL_ESTATE"),
    ("68.31Z", "Agences immobilières", "REAL_ESTATE"),
    ("85.59A", "Formation continue d'adultes", "PROFESSIONAL_TRAINING_COACHING"),
    ("86.21Z", "Activité des médecins généralistes", "MEDICAL_PRACTICE"),
    ("78.10Z", "Activités des agences de placement de main-d'œuvre", "STAFFING_AND_RECRUITING"),
    ("81.21Z", "Nettoyage courant des bâtiments", "FACILITIES_SERVICES"),
    ("35.11Z", "Production d'électricité", "UTILITIES"),
    ("20.59Z", "Fabrication d'autres produits chimiques n.c.a.", "CHEMICALS"),
    ("22.29A", "Fabrication de pièces techniques à base de matières plastiques", "PLASTICS"),
    ("26.51B", "Fabrication d'instrumentation scientifique et technique", "ELECTRICAL_ELECTRONIC_MANUFACTURING"),
    ("64.19Z", "Autres intermédiations monétaires", "BANKING"),
    ("66.22Z", "Activités des agents et courtiers d'assurances", "INSURANCE"),
]

# Legal form -> (INSEE "catégorie juridique" code, label).
LEGAL_FORMS = {
    "SAS": ("5710", "SAS, société par actions simplifiée"),
    "SASU": ("5720", "Société par actions simplifiée à associé unique"),
    "SARL": ("5499", "Société à responsabilité limitée (sans autre indication)"),
    "EURL": ("5498", "SARL unipersonnelle"),
    "SA": ("5599", "SA à conseil d'administration (s.a.i.)"),
    "SCI": ("6540", "Société civile immobilière"),
}
# Weights by company category (PME firms are mostly SAS/SARL; GE/ETI mostly SA/SAS).
LEGAL_FORM_WEIGHTS = {
    "PME": [("SAS", 40), ("SARL", 30), ("SASU", 10), ("EURL", 8), ("SA", 7), ("SCI", 5)],
    "ETI": [("SAS", 55), ("SA", 40), ("SARL", 5)],
    "GE": [("SA", 60), ("SAS", 40)],
}

# INSEE "tranche d'effectif salarié" code -> (low, high) headcount.
HEADCOUNT_BANDS = {
    "01": (1, 2), "02": (3, 5), "03": (6, 9), "11": (10, 19), "12": (20, 49), "21": (50, 99), "22": (100, 199),
    "31": (200, 249), "32": (250, 499), "41": (500, 999), "42": (1000, 1999), "51": (2000, 4999), "52": (5000, 9999),
}
BANDS_BY_CATEGORY = {
    "PME": ["01", "02", "03", "11", "12", "21", "22", "31"],
    "ETI": ["32", "41", "42", "51"],
    "GE": ["52"],
}

NAME_PREFIXES = [
    "Groupe", "Atelier", "Maison", "Cabinet", "Société", "Établissements", "Transports", "Menuiserie",
    "Boulangerie", "Laboratoires", "Imprimerie", "Garage", "Bureau d'études", "Agence", "Compagnie",
]
NAME_ROOTS = [
    "Technova", "Logicéa", "Alpinéo", "Bretagne Solutions", "Datavia", "Infoplus", "Soléane", "Armor Industrie",
    "Provence Services", "Numérik", "Cloudéo", "Ecovert", "Mécanix", "Batiprim", "Agrivia", "Hexagone Conseil",
    "Océalis", "Vitaliance", "Sigmatec", "Lumina", "Atlantique Froid", "Rhône Fluides", "Pyrénées Bois",
    "Normandie Emballages", "Alsace Précision", "Savoie Énergie", "Azur Digital", "Loire Logistique",
    "Medicis", "Kaléo", "Optimum", "Stratéos", "Quadra", "Nexo", "Vectis", "Altéa", "Orféo", "Zénith",
    "Equinoxe", "Boréal", "Célestin", "Mistral", "Tramontane", "Calypso", "Hermès Conseil", "Archimède",
    "Galilée", "Pégase", "Arcadie", "Vauban", "Colbert", "Eiffel Ingénierie", "Lavoisier", "Ampère Systèmes",
]
NAME_SUFFIXES = [
    "", "", "", " Conseil", " Services", " Industrie", " Solutions", " & Fils", " Frères", " France",
    " Ouest", " Sud", " Est", " Nord", " Digital", " Technologies", " Distribution",
]

JOB_TITLES = [
    "Directeur général", "Directrice générale", "Président", "Gérant", "Gérante", "Directeur administratif et financier",
    "Responsable des achats", "Acheteuse", "Acheteur", "Directeur commercial", "Responsable marketing",
    "DSI", "Responsable informatique", "Office manager", "Assistante de direction", "Contrôleur de gestion",
    "Responsable RH", "Chargée de communication", "Directeur des opérations", "Chef de projet", "Comptable",
    "Responsable logistique", "Directeur technique", "CTO", "Responsable qualité",
]

FREE_MAIL_DOMAINS = ["gmail.com", "orange.fr", "free.fr", "hotmail.fr", "laposte.net", "wanadoo.fr", "outlook.fr"]
TLDS = ["fr", "fr", "fr", "com", "eu", "io"]

# HubSpot's default lifecycle stages, in funnel order.
LIFECYCLE_FUNNEL = ["lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer"]

MARKETING_CHANNELS = ["PAID_SEARCH", "ORGANIC_SEARCH", "SOCIAL_MEDIA", "EMAIL_MARKETING", "OTHER_CAMPAIGNS"]
# Sales-sourced contacts are HubSpot OFFLINE plus the custom `lead_source` property.
SALES_LEAD_SOURCES = ["prospection", "recommandation", "client existant"]

CAMPAIGNS = {
    "PAID_SEARCH": ["Google Ads – marque", "Google Ads – générique", "Bing Ads"],
    "ORGANIC_SEARCH": ["SEO – agence de contenu"],
    "SOCIAL_MEDIA": ["LinkedIn Ads – décideurs", "LinkedIn Ads – retargeting"],
    "EMAIL_MARKETING": ["Newsletter mensuelle", "Nurturing webinaires"],
    "OTHER_CAMPAIGNS": ["Salon Big Data & IA Paris", "Salon SME", "Webinaires partenaires"],
}
